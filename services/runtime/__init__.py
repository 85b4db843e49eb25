"""What every Trilha process shares: settings, logs, metrics, clients, network checks, running until signalled."""
