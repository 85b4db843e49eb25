"""Gateway-side call-record emitter: `Emitter(settings).start()`, then `await emitter.emit(record)`."""

from services.gateway.emitter.emitter import Emitter
from services.gateway.emitter.stats import EmitterStats

__all__ = ["Emitter", "EmitterStats"]
