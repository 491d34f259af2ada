from . import asr

__all__ = ['asr']
