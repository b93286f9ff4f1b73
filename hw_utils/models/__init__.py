"""The course's model zoo: networks the experiments of several assignments share.

- :func:`small_cnn`: a configurable VGG-style CNN (optional batch norm and dropout, pluggable
  normalisation and dropout layers, so an assignment can put the student's own layer in).
"""

from hw_utils.models.cnn import small_cnn

__all__ = ["small_cnn"]
