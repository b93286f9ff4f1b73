"""The course's model zoo: networks the experiments of several assignments share.

- :func:`small_cnn`: a configurable VGG-style CNN (optional batch norm and dropout, pluggable
  normalisation and dropout layers, so an assignment can put the student's own layer in).
- :func:`resnet_small` (:class:`ResNet`, :class:`BasicBlock`): a small ResNet in torchvision's
  conventions (head ``model.fc``), the course's own backbone.
- :func:`load_backbone`: a pretrained backbone, the course's own (:func:`load_pretrained`, shipped
  in ``hw_utils/assets`` with a SHA-256 check, made by ``python -m hw_utils.models.pretrain``) or
  torchvision's ImageNet ResNet-18 when online; :func:`read_record` says how the course's was made.
"""

from hw_utils.models.cnn import small_cnn
from hw_utils.models.pretrained import (
    BACKBONES,
    PretrainedRecord,
    PretrainedWeightsError,
    load_backbone,
    load_pretrained,
    read_record,
)
from hw_utils.models.resnet import BasicBlock, ResNet, resnet_small

__all__ = [
    "BACKBONES",
    "BasicBlock",
    "PretrainedRecord",
    "PretrainedWeightsError",
    "ResNet",
    "load_backbone",
    "load_pretrained",
    "read_record",
    "resnet_small",
    "small_cnn",
]
