"""The vendor's logger, named ``dashscope`` so that filters users attach to it keep working."""
import logging
import os
import threading

logger = logging.getLogger('dashscope')
logger.addHandler(logging.NullHandler())

_env_applied = False
_env_lock = threading.Lock()


def apply_env_logging_level():
    """Honour DASHSCOPE_LOGGING_LEVEL once, at first client use (never at import; reference D-69)."""
    global _env_applied
    if _env_applied:
        return
    with _env_lock:
        if _env_applied:
            return
        _env_applied = True
        level = os.environ.get('DASHSCOPE_LOGGING_LEVEL')
        if not level:
            return
        logger.setLevel(logging.DEBUG if level.lower() == 'debug' else logging.INFO)
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(
            '%(asctime)s - %(name)s - %(filename)s - %(funcName)s - %(lineno)d - '
            '%(levelname)s - %(message)s'))
        logger.addHandler(handler)


def mask_key(key):
    """``sk-…abcd``: enough to tell keys apart in a debug line, never the key."""
    if not key:
        return repr(key)
    return '%s…%s' % (key[:3], key[-4:]) if len(key) > 8 else '…'
