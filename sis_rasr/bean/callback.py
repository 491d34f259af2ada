# -*- coding: utf-8 -*-
from sis_rasr.utils.logger_utils import logger
from sis_rasr.exception.exceptions import ClientException


class RasrCallBack:
    """ 实时语音识别的监听接口: connection, start, results, end, close, error and event callbacks.

    All methods run on the connection's receive thread; ``on_response`` must be overridden.
    """

    def on_open(self):
        logger.debug('websocket connect success')

    def on_start(self, message):
        """ message: 'trace id is <trace_id>' """
        logger.debug('websocket start, %s' % message)

    def on_response(self, message):
        """ message: the RESULT dict (resp_type, trace_id, segments) """
        raise ClientException('no response implementation')

    def on_end(self, message):
        """ message: 'trace id is <trace_id>' """
        logger.debug('websocket end, %s' % message)

    def on_close(self):
        logger.debug('websocket close')

    def on_error(self, error):
        """ error: the raw JSON text of a server ERROR/FATAL_ERROR, or an exception object """
        logger.error(error)

    def on_event(self, event):
        """ event: VOICE_START, VOICE_END, EXCEEDED_SILENCE or EXCEEDED_AUDIO """
        logger.info("receive event %s" % event)


class RttsCallBack:
    """ 实时语音合成的监听接口 (shipped for import compatibility) """

    def on_close(self):
        logger.debug('websocket close')

    def on_open(self):
        logger.debug('websocket connect success')

    def on_start(self, message):
        logger.debug('websocket start, %s' % message)

    def on_response(self, data):
        raise ClientException('no response implementation')

    def on_end(self, message):
        logger.debug('websocket end, %s' % message)

    def on_error(self, error):
        logger.error(error)
