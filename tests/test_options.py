"""The conversion options: defaults are the paper's configuration and write nothing."""
import pytest

from snn2hw.errors import InputError
from snn2hw.snn.options import Conversion


def test_defaults_write_no_params_and_read_back_from_empty_params():
    assert Conversion().to_params() == {}
    assert Conversion.from_params({"samples": 10, "reset": "zero"}) == Conversion()


def test_non_defaults_round_trip_through_params():
    opts = Conversion(coding="direct", v_init=0.5, per_channel=True, bias_calibration=True,
                      readout="membrane", window="pipelined")
    params = opts.to_params()
    assert params == {"coding": "direct", "v_init": 0.5, "per_channel": True,
                      "bias_calibration": True, "readout": "membrane", "window": "pipelined"}
    assert Conversion.from_params(params) == opts


@pytest.mark.parametrize("kwargs", [{"coding": "burst"}, {"readout": "rate"},
                                    {"window": "sliding"}, {"v_init": 0.25}])
def test_unknown_values_are_input_errors(kwargs):
    with pytest.raises(InputError):
        Conversion(**kwargs)
