"""The private Keras / TensorFlow / keras-tuner hooks the project relies on (layers/internals.py,
export/internals.py, apps/internals.py) are still there: after an upgrade, this names the one
that went away."""

import pytest

from apps import internals as app_internals
from export import internals as export_internals
from layers import internals as layer_internals

HOOKS = {**layer_internals.HOOKS, **export_internals.HOOKS, **app_internals.HOOKS}


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_private_hook_is_still_there(name):
    try:
        present = HOOKS[name]()
    except Exception as e:  # an import or attribute error inside the check
        present, why = False, f"{type(e).__name__}: {e}"
    else:
        why = "the check returned False"
    assert present, f"the private hook {name} is gone after an upgrade ({why}): see its wrapper's comment"


def test_every_private_import_goes_through_the_internals_modules():
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[1]
    pattern = re.compile(r"keras\.src|keras_tuner\.src|tensorflow\.python|tf\.__internal__|_get_ops_details|object\.__setattr__"
                         r"|\._trainable_variables")
    offenders = [f"{path.relative_to(root)}:{n}"
                 for package in ("apps", "layers", "pipelines", "export")
                 for path in sorted((root / package).glob("*.py")) if path.name != "internals.py"
                 for n, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert not offenders, f"private hooks used outside the packages' internals.py: {offenders}"
