# -*- coding: utf-8 -*-
from sis_rasr.utils.logger_utils import logger

# Default of websocket_wait_time; RasrClient uses its own 18 s unless the caller changes this value.
DEFAULT_WEBSOCKET_WAIT_TIME = 20

_warned_unverified = []


class SisConfig:
    """Timeouts, proxy and TLS settings shared by the clients. Plain attributes, no validation."""

    def __init__(self):
        self.connect_timeout = 10
        self.read_timeout = 10
        # The vendor page (seed) documents 4; the 1.8.1 code says 10.
        self.connect_lost_timeout = 4
        self.proxy = None
        # Verified by default (the vendor default was False, i.e. CERT_NONE).
        self.certificate_check = True
        self.websocket_wait_time = DEFAULT_WEBSOCKET_WAIT_TIME

    def set_connect_timeout(self, timeout):
        """ 设置连接超时 (connect timeout, seconds) """
        self.connect_timeout = timeout

    def get_connect_timeout(self):
        return self.connect_timeout

    def set_read_timeout(self, timeout):
        """ 设置读取超时 (HTTP read timeout, seconds) """
        self.read_timeout = timeout

    def get_read_timeout(self):
        return self.read_timeout

    def set_connect_lost_timeout(self, timeout):
        """ 设置connect lost超时: ping timeout; pings are sent every timeout + 10 s """
        self.connect_lost_timeout = timeout

    def get_connect_lost_timeout(self):
        return self.connect_lost_timeout

    def set_proxy(self, proxy):
        """ 设置代理 [host, port] or [host, port, user, password]; HTTP only """
        self.proxy = proxy

    def get_proxy(self):
        return self.proxy

    def set_certificate_check(self, certificate_check):
        """ 设置是否校验证书 (verify TLS certificates; default True) """
        if not certificate_check and not _warned_unverified:
            _warned_unverified.append(True)
            logger.warning('TLS certificate verification is turned off')
        self.certificate_check = certificate_check

    def get_certificate_check(self):
        return self.certificate_check

    def set_websocket_wait_time(self, wait_time):
        """ 设置websocket等待时间 (bound of send_start/send_end waits when changed from the default) """
        self.websocket_wait_time = wait_time

    def get_websocket_wait_time(self):
        return self.websocket_wait_time
