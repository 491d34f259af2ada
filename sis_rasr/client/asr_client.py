# -*- coding: utf-8 -*-
from sis_rasr.client.rasr_client import RasrClient


class SasrWebsocketClient(RasrClient):
    """ 一句话识别websocket client; use ``sasr_stream_connect``. Same arguments as RasrClient. """

    def __init__(self, user_name=None, password=None, domain_name=None, region=None, project_id=None, callback=None,
                 config=None, service_endpoint=None, token_url=None, retry_sleep_time=1,
                 ak=None, sk=None, use_aksk=False):
        RasrClient.__init__(self, user_name, password, domain_name, region, project_id, callback, config,
                            service_endpoint, token_url, retry_sleep_time, ak, sk, use_aksk)
