"""Request plumbing shared by the WebSocket and HTTP clients of this package: URLs and headers."""
import os
import platform
import re
import uuid

from ..version import DASHSCOPE_COMPAT_VERSION, __version__
from .error import InputRequired

_WORKSPACE_RE = re.compile(r'\A[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z')
_NO_WORKSPACE = ("The base URL contains '{workspace_id}' but no workspace id is available: pass "
                 "workspace to the API call, set the DASHSCOPE_WORKSPACE_ID environment variable, or "
                 "call dashscope.set_region(region, workspace_id).")

# One per process, like the vendor's x-dashscope-sdk-session-id.
SESSION_ID = uuid.uuid4().hex


_forced_warned = set()


def forced_url(kind):
    """DASHSCOPE_ASR_FORCE_WEBSOCKET_URL / _HTTP_URL: win over module attributes and kwargs, so
    samples that hard-code the production URL can run against an emulator (reference OQ-12)."""
    name = 'DASHSCOPE_ASR_FORCE_%s_URL' % kind
    url = os.environ.get(name)
    if url and name not in _forced_warned:
        _forced_warned.add(name)
        from .logging import logger
        logger.warning('%s is set: every %s request goes to %s', name, kind.lower(), url)
    return url or None


def validate_workspace_id(workspace_id):
    if not isinstance(workspace_id, str) or not _WORKSPACE_RE.match(workspace_id):
        raise ValueError('Invalid workspace_id %r: must match ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$'
                         % (workspace_id,))
    return workspace_id


def resolve_url(url, workspace=None):
    """Fill the ``{workspace_id}`` placeholder of a base URL (call argument, then environment)."""
    if '{workspace_id}' not in url:
        return url
    ws = workspace or os.environ.get('DASHSCOPE_WORKSPACE_ID')
    if not ws:
        raise InputRequired(_NO_WORKSPACE)
    return url.replace('{workspace_id}', validate_workspace_id(ws))


def _clean(text):
    return text.replace('\n', ' ').replace('\r', ' ')


def _platform_tag():
    try:
        plat = _clean(platform.platform())
    except Exception:
        plat = 'unknown'
    try:
        proc = _clean(platform.processor())
    except Exception:
        proc = 'unknown'
    return plat, proc


_PLAT, _PROC = _platform_tag()
_BASE_UA = 'dashscope/%s; python/%s; platform/%s; processor/%s; dashscope_asr/%s' % (
    DASHSCOPE_COMPAT_VERSION, platform.python_version(), _PLAT, _PROC, __version__)


def user_agent(headers=None, suffix=None):
    ua = _BASE_UA
    if headers and headers.get('user-agent'):
        ua += '; ' + headers['user-agent']
    if suffix:
        ua += '; ' + suffix
    return ua


def sdk_headers(module):
    """The ``x-dashscope-sdk-*`` pair, unless DASHSCOPE_DISABLE_SDK_HEADERS is set."""
    if os.environ.get('DASHSCOPE_DISABLE_SDK_HEADERS'):
        return []
    return [('x-dashscope-sdk-client', 'python-sdk/%s/%s' % (DASHSCOPE_COMPAT_VERSION, module)),
            ('x-dashscope-sdk-session-id', SESSION_ID)]


def data_inspection_enabled():
    return os.environ.get('DASHSCOPE_DISABLE_DATA_INSPECTION', 'true').lower() == 'false'


def split_headers(headers):
    """Copy of the user's ``headers`` without its ``user-agent`` entry, and that entry."""
    headers = dict(headers or {})
    ua = headers.pop('user-agent', None)
    return headers, ua


def websocket_headers(api_key, workspace=None, headers=None, user_agent_suffix=None):
    """Handshake headers in the vendor's order, as ``Name: value`` lines; custom headers win."""
    custom, custom_ua = split_headers(headers)
    lines = [('Authorization', 'Bearer %s' % api_key),
             ('user-agent', user_agent({'user-agent': custom_ua} if custom_ua else None,
                                       user_agent_suffix))]
    lines.extend(sdk_headers('audio'))
    if data_inspection_enabled():
        lines.append(('X-DashScope-DataInspection', 'enable'))
    if workspace:
        lines.append(('X-DashScope-WorkSpace', workspace))
    merged = {}
    order = []
    for name, value in lines + list(custom.items()):
        key = name.lower()
        if key not in merged:
            order.append(key)
        merged[key] = (name, value)
    return ['%s: %s' % merged[k] for k in order]
