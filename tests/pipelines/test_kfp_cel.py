"""Trigger conditions evaluated as the KFP driver's CEL does, for what TFX's compiler emits."""

import pytest

from pipelines import kfp_cel

INPUT = {'inputs': {'artifacts': {'blessing': {'artifacts': [
    {'name': '12', 'uri': 'gs://b/x', 'metadata': {'blessed': 1.0, 'new_model': 0.0,
                                                   'current_model': 'gs://b/m'}}]}},
    'parameter_values': {'n': 3.0}}}
BLESSED = "inputs.artifacts['blessing'].artifacts[0].metadata['blessed']"
NEW = "inputs.artifacts['blessing'].artifacts[0].metadata['new_model']"


@pytest.mark.parametrize('condition,expected', [
    (f'({BLESSED} == 1.0)', True),
    (f'({BLESSED} == 1.0) && ({NEW} == 1.0)', False),  # TFX's Pusher condition, not new
    (f'({BLESSED} == 1.0) || ({NEW} == 1.0)', True),
    (f'!({NEW} == 1.0)', True),
    (f'({BLESSED} > 0.5) && ({NEW} < 0.5)', True),
    (f"inputs.artifacts['blessing'].artifacts[0].uri == 'gs://b/x'", True),
    (f"(inputs.artifacts['blessing'].artifacts[0].uri + '/y') == 'gs://b/x/y'", True),
    (f"{BLESSED} == 'yes'", False),  # CEL: values of different types are not equal
    ("inputs.parameter_values['n'] >= 3.0", True),
])
def test_conditions(condition, expected):
  assert kfp_cel.evaluate(condition, INPUT) is expected


@pytest.mark.parametrize('condition,message', [
    ("(inputs.artifacts['_PolyViTEvaluator.blessing'].artifacts[0].metadata['blessed'] == 1.0)",
     'no such key'),  # the key TFX 1.16 wrote for Pusher before pipeline.py's fix
    (f'{BLESSED}', 'not a bool'),
    (f'{BLESSED} < \'a\'', 'no overload'),
    ("inputs.artifacts['blessing'].artifacts[3].uri == ''", 'index out of range'),
    ('size(inputs) > 0', "undeclared reference 'size'"),
    ('outputs.x == 1.0', 'undeclared'),
    (f'{BLESSED} == 1.0 &&', 'end of condition'),
    ('1.0 ~ 2.0', 'unsupported CEL'),
])
def test_what_the_driver_rejects_fails(condition, message):
  with pytest.raises(kfp_cel.ConditionError, match=message):
    kfp_cel.evaluate(condition, INPUT)
