"""Constants of ``dashscope.common.constants`` used by the ASR APIs."""
DEFAULT_REQUEST_TIMEOUT_SECONDS = 300
WEBSOCKET_ERROR_CODE = 44
SERVICE_503_MESSAGE = 'Service temporarily unavailable, possibly overloaded or not ready.'
REPEATABLE_STATUS = [503, 504]


class TaskStatus:
    PENDING = 'PENDING'
    SUSPENDED = 'SUSPENDED'
    SUCCEEDED = 'SUCCEEDED'
    CANCELED = 'CANCELED'
    RUNNING = 'RUNNING'
    FAILED = 'FAILED'
    UNKNOWN = 'UNKNOWN'


class ApiProtocol:
    WEBSOCKET = 'websocket'
    HTTP = 'http'
    HTTPS = 'https'


class HTTPMethod:
    GET = 'GET'
    HEAD = 'HEAD'
    POST = 'POST'
    PUT = 'PUT'
    DELETE = 'DELETE'
    CONNECT = 'CONNECT'
    OPTIONS = 'OPTIONS'
    TRACE = 'TRACE'
    PATCH = 'PATCH'
