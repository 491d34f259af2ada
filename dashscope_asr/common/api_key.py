"""API key resolution (``dashscope.common.api_key``)."""
import os

from .error import AuthenticationError

_NO_KEY = ('No api key provided. You can set by dashscope.api_key = your_api_key in code, or you can '
           'set it via environment variable DASHSCOPE_API_KEY= your_api_key. You can store your api '
           'key to a file, and use dashscope.api_key_file_path=api_key_file_path in code, or you can '
           'set api key file path via environment variable DASHSCOPE_API_KEY_FILE_PATH, You can call '
           'save_api_key to api_key_file_path or default path(~/.dashscope/api_key).')


def _default_key_file():
    return os.path.join(os.path.expanduser('~'), '.dashscope', 'api_key')


def get_default_api_key():
    """Module ``api_key``, else ``api_key_file_path``, else ``~/.dashscope/api_key``, else raise."""
    import dashscope_asr
    if dashscope_asr.api_key is not None:
        return dashscope_asr.api_key
    if dashscope_asr.api_key_file_path:
        with open(dashscope_asr.api_key_file_path) as f:
            return f.read().strip()
    path = _default_key_file()
    if os.path.exists(path):
        with open(path) as f:
            return f.read().strip()
    raise AuthenticationError(_NO_KEY)


def save_api_key(api_key, api_key_file_path=None):
    """Write the key to ``~/.dashscope/api_key`` (or the given path), readable by the owner only."""
    path = api_key_file_path or _default_key_file()
    parent = os.path.dirname(path)
    if parent and not os.path.isdir(parent):
        os.makedirs(parent, mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write(api_key)
    try:
        os.chmod(path, 0o600)  # an existing file keeps its mode through O_CREAT
    except OSError:
        pass
