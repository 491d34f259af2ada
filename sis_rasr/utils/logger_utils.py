# -*- coding: utf-8 -*-
"""The library logger. Unlike the vendor SDK, importing it configures nothing and creates no log file."""
import logging

logger = logging.getLogger('sis_rasr')
logger.addHandler(logging.NullHandler())
