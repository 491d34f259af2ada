"""Trace switches of the NLS SDK, on the logger named 'nls' (the original's name, so existing
logging configuration keeps working). Importing this module only adds a NullHandler."""
import logging

__all__ = ['enableTrace', 'dump', 'error', 'warning', 'debug', 'trace',
           'isEnabledForError', 'isEnabledForDebug', 'isEnabledForTrace']

_logger = logging.getLogger('nls')
_logger.addHandler(logging.NullHandler())

_traceEnabled = False
_defaultHandler = logging.StreamHandler()
_TRACE_FORMAT = '%(asctime)s - %(levelname)s - %(message)s'
# Handlers that enableTrace(True) attached, so that enableTrace(False) can take exactly those away.
_traceHandlers = []


def enableTrace(traceable, handler=_defaultHandler):
    global _traceEnabled
    _traceEnabled = bool(traceable)
    if traceable:
        handler.setFormatter(logging.Formatter(_TRACE_FORMAT))
        _logger.addHandler(handler)
        if handler not in _traceHandlers:
            _traceHandlers.append(handler)
        _logger.setLevel(logging.DEBUG)
    else:
        while _traceHandlers:
            _logger.removeHandler(_traceHandlers.pop())
        _logger.setLevel(logging.NOTSET)


def dump(title, msg):
    if _traceEnabled:
        _logger.debug('### ' + title + ' ###')
        _logger.debug(msg)
        _logger.debug('#' * 40)


def trace(msg):
    if _traceEnabled:
        _logger.debug(msg)


def error(msg):
    _logger.error(msg)


def warning(msg):
    _logger.warning(msg)


def debug(msg):
    _logger.debug(msg)


def isEnabledForError():
    return _logger.isEnabledFor(logging.ERROR)


def isEnabledForDebug():
    return _logger.isEnabledFor(logging.DEBUG)


def isEnabledForTrace():
    return _traceEnabled
