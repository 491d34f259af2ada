from .recognition import Recognition, RecognitionCallback, RecognitionResult
from .transcription import Transcription
from .vocabulary import VocabularyService, VocabularyServiceException

__all__ = ['Recognition', 'RecognitionCallback', 'RecognitionResult', 'Transcription',
           'VocabularyService', 'VocabularyServiceException']
