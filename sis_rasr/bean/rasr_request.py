# -*- coding: utf-8 -*-


class RasrRequest:
    """ 实时语音识别请求: the START configuration. Setters store values as given. """

    def __init__(self, audio_format, model_property):
        """
        :param audio_format:    音频格式, e.g. pcm16k16bit, pcm8k16bit, ulaw8k8bit, alaw16k8bit
        :param model_property:  属性字符串 language_sampleRate_domain, e.g. chinese_16k_general
        """
        self._audio_format = audio_format
        self._model_property = model_property
        self._add_punc = 'no'
        self._digit_norm = 'yes'
        self._vad_head = 10000
        self._vad_tail = 500
        self._max_seconds = 30
        self._interim_results = 'no'
        self._vad_threshold = 0
        self._need_word_info = 'no'
        self._need_smooth = None
        self._user_words = []
        self._vocabulary_id = None

    def set_add_punc(self, add_punc):
        """ 是否添加标点, yes or no (default no) """
        self._add_punc = add_punc

    def set_digit_norm(self, digit_norm):
        """ 是否将数字转写为阿拉伯数字, yes or no (default yes) """
        self._digit_norm = digit_norm

    def set_vad_head(self, vad_head):
        """ 有效头部 ms, [0, 60000] (default 10000) """
        self._vad_head = vad_head

    def set_vad_tail(self, vad_tail):
        """ 有效尾部 ms, [0, 3000] (default 500) """
        self._vad_tail = vad_tail

    def set_max_seconds(self, max_seconds):
        """ 一句话最大长度 s, [0, 60] (default 30) """
        self._max_seconds = max_seconds

    def set_interim_results(self, interim_results):
        """ 是否返回中间结果, yes or no (default no) """
        self._interim_results = interim_results

    def set_vad_threshold(self, vad_threshold):
        """ VAD threshold (default 0, always sent) """
        self._vad_threshold = vad_threshold

    def set_need_word_info(self, need_word_info):
        """ 是否输出分词信息, yes or no (default no) """
        self._need_word_info = need_word_info

    def set_need_smooth(self, need_smooth):
        """ 是否顺滑 (remove filler words), yes or no; sent only when set """
        self._need_smooth = need_smooth

    def set_user_words(self, user_words):
        """ 用户词 list of str; sent only when non-empty """
        self._user_words = user_words

    def set_vocabulary_id(self, vocabulary_id):
        """ 热词表id; sent whenever not None """
        self._vocabulary_id = vocabulary_id

    def construct_params(self):
        config = {
            'audio_format': self._audio_format,
            'property': self._model_property,
            'add_punc': self._add_punc,
            'digit_norm': self._digit_norm,
            'vad_head': self._vad_head,
            'vad_tail': self._vad_tail,
            'max_seconds': self._max_seconds,
            'interim_results': self._interim_results,
            'vad_threshold': self._vad_threshold,
            'need_word_info': self._need_word_info,
        }
        if self._need_smooth is not None:
            config['need_smooth'] = self._need_smooth
        if self._user_words is not None and len(self._user_words) > 0:
            config['user_words'] = self._user_words
        if self._vocabulary_id is not None:
            config['vocabulary_id'] = self._vocabulary_id
        return {'command': 'START', 'config': config}
