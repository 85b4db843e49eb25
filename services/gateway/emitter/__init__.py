"""Gateway-side call-record emitter: `Emitter(settings).start()`, then `await emitter.emit(record)`."""

from services.gateway.emitter.emitter import Emitter, EmitterStats

__all__ = ["Emitter", "EmitterStats"]
