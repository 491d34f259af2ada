"""Exception classes of the NLS SDK. Each derives directly from Exception, as in the original."""

__all__ = [
    'InvalidParameter', 'GetTokenFailed', 'ConnectionTimeout', 'ConnectionUnavailable',
    'StartTimeoutException', 'StopTimeoutException', 'NotStartException', 'CompleteTimeoutException',
    'WrongStateException', 'TokenServerError', 'TokenClientError',
]


class InvalidParameter(Exception):
    pass


class GetTokenFailed(Exception):
    pass


class ConnectionTimeout(Exception):
    pass


class ConnectionUnavailable(Exception):
    pass


class StartTimeoutException(Exception):
    pass


class StopTimeoutException(Exception):
    pass


class NotStartException(Exception):
    pass


class CompleteTimeoutException(Exception):
    pass


class WrongStateException(Exception):
    pass


class TokenServerError(GetTokenFailed):
    """The token service answered with an error; str() follows aliyunsdkcore's ServerException."""

    def __init__(self, http_status, error_code, error_message, request_id):
        self.http_status = http_status
        self.error_code = error_code
        self.error_message = error_message
        self.request_id = request_id
        super().__init__('HTTP Status: %s Error:%s %s RequestID: %s'
                         % (http_status, error_code, error_message, request_id))


class TokenClientError(GetTokenFailed):
    """The token service could not be reached; str() follows aliyunsdkcore's ClientException."""

    def __init__(self, detail):
        self.error_code = 'SDK.HttpError'
        self.error_message = str(detail)
        super().__init__('SDK.HttpError %s' % (detail,))
