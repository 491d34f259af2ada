# -*- coding: utf-8 -*-
"""Exceptions of the SDK: ``ClientException`` (local failures) and ``ServerException`` (HTTP error bodies)."""


class ClientException(Exception):
    """A failure detected on the client side: bad argument, wrong state, connect failure, timeout."""

    def __init__(self, error_msg):
        # The vendor passes itself as the first arg; callers may inspect e.args[1].
        Exception.__init__(self, self, error_msg)
        self._error_msg = error_msg

    def get_error_msg(self):
        return self._error_msg

    def __str__(self):
        return str(self._error_msg)


class ServerException(Exception):
    """An error body (``error_code`` + ``error_msg``) returned by an HTTP endpoint."""

    def __init__(self, error_code, error_msg):
        Exception.__init__(self, self, str({'error_code': error_code, 'error_msg': error_msg}))
        self._error_code = error_code
        self._error_msg = error_msg

    def get_error_code(self):
        return self._error_code

    def get_error_msg(self):
        return self._error_msg

    def __str__(self):
        return 'error_code: ' + self._error_code + '\t' + 'error_msg: ' + self._error_msg
