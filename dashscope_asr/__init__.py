"""Drop-in for the speech-recognition part of the DashScope SDK: ``import dashscope_asr as dashscope``.

Module attributes are the vendor's configuration; they are read at call time, so setting
``dashscope_asr.api_key`` after import takes effect.
"""
import os as _os

from .common.utils import validate_workspace_id as _validate_workspace_id
from .version import __version__

_MAAS_REGIONS = ('ap-southeast-1', 'us-east-1', 'cn-hongkong', 'eu-central-1', 'ap-northeast-1')
_ver = _os.environ.get('DASHSCOPE_API_VERSION', 'v1')
_region = _os.environ.get('DASHSCOPE_API_REGION', 'cn-beijing')

if _region in _MAAS_REGIONS:
    _ws = _os.environ.get('DASHSCOPE_WORKSPACE_ID')
    _ws = _validate_workspace_id(_ws) if _ws else '{workspace_id}'
    _host = '%s.%s.maas.aliyuncs.com' % (_ws, _region)
else:
    _host = 'dashscope.aliyuncs.com'

api_key = _os.environ.get('DASHSCOPE_API_KEY')
api_key_file_path = _os.environ.get('DASHSCOPE_API_KEY_FILE_PATH')
base_http_api_url = _os.environ.get('DASHSCOPE_HTTP_BASE_URL', 'https://%s/api/%s' % (_host, _ver))
base_websocket_api_url = _os.environ.get('DASHSCOPE_WEBSOCKET_BASE_URL',
                                         'wss://%s/api-ws/%s/inference' % (_host, _ver))
base_compatible_api_url = _os.environ.get('DASHSCOPE_COMPATIBLE_BASE_URL',
                                          'https://%s/compatible-mode/%s' % (_host, _ver))


def set_region(region, workspace_id=None):
    """Point the base URLs at a MaaS region's workspace host."""
    global base_http_api_url, base_compatible_api_url, base_websocket_api_url
    regions = set(_MAAS_REGIONS) | {'cn-beijing'}
    if region not in regions:
        raise ValueError("Unsupported region '%s'. Supported regions: %s" % (region, sorted(regions)))
    if not workspace_id:
        raise ValueError('workspace_id is required')
    _validate_workspace_id(workspace_id)
    host = '%s.%s.maas.aliyuncs.com' % (workspace_id, region)
    base_http_api_url = 'https://%s/api/v1' % host
    base_compatible_api_url = 'https://%s/compatible-mode/v1' % host
    base_websocket_api_url = 'wss://%s/api-ws/v1/inference' % host


from .common.api_key import save_api_key  # noqa: E402
from . import audio  # noqa: E402
from .audio.asr.transcription import Transcription  # noqa: E402

__all__ = ['api_key', 'api_key_file_path', 'base_http_api_url', 'base_websocket_api_url',
           'base_compatible_api_url', 'save_api_key', 'set_region', 'Transcription', 'audio',
           '__version__']
