# -*- coding: utf-8 -*-
import base64
import os

from sis_rasr.exception.exceptions import ClientException
from sis_rasr.utils.logger_utils import logger


def encode_file(file_path):
    """ Base64 text of a file. """
    if not os.path.exists(file_path):
        logger.error("The Path %s doesn't exist" % file_path)
        raise ClientException("The Path %s doesn't exist" % file_path)
    with open(file_path, 'rb') as f:
        return str(base64.b64encode(f.read()), 'utf-8')


def save_audio_from_base64str(base64_str, save_path):
    """ Decodes base64 audio into save_path, creating parent directories. """
    parent = os.path.dirname(save_path)
    if parent and not os.path.exists(parent):
        os.makedirs(parent)
    with open(save_path, 'wb') as f:
        f.write(base64.b64decode(base64_str))
