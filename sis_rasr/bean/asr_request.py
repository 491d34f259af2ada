# -*- coding: utf-8 -*-
from sis_rasr.bean.rasr_request import RasrRequest


class SasrWebsocketRequest(RasrRequest):
    """ 一句话识别websocket请求 (/asr/short-audio).

    The vendor meant to drop vad_head/vad_tail/max_seconds but deleted them from the wrong dict,
    so they are still sent; the wire form is kept identical to RasrRequest on purpose.
    """

    def construct_params(self):
        return RasrRequest.construct_params(self)
