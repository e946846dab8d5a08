from __future__ import annotations

import pytest

from alrun.errors import AlrunError
from alrun.models import MODELS
from alrun.registry import Registry


def test_register_get_names():
    reg: Registry = Registry("thing", "things")

    @reg.register
    def alpha(x: int = 1):
        return x

    assert reg.get("alpha") is alpha and reg.names() == ["alpha"] and "alpha" in reg


def test_duplicate_name_is_an_error():
    reg: Registry = Registry("thing", "things")

    def alpha():
        pass

    reg.register(alpha)
    with pytest.raises(AlrunError, match="registered twice"):
        reg.register(alpha)


def test_unknown_name_lists_valid_ones():
    with pytest.raises(AlrunError) as e:
        MODELS.get("bert_huge")
    assert "bert_huge" in str(e.value) and "tfidf_logreg" in str(e.value)


def test_unknown_parameter_names_key_and_valid_ones():
    with pytest.raises(AlrunError) as e:
        MODELS.check_params("tfidf_logreg", {"max_featurs": 3}, "models.tfidf_logreg", 1)
    msg = str(e.value)
    assert "models.tfidf_logreg.max_featurs" in msg and "max_features" in msg
    MODELS.check_params("tfidf_logreg", {"max_features": 3}, "models.tfidf_logreg", 1)
