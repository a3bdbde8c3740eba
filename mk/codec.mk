
codec-fuzz: $(STAMP) ## codec fuzzing with 200,000 inputs (IIOT_FUZZ_N changes it)
	IIOT_FUZZ_N=$${IIOT_FUZZ_N:-200000} $(VENV)/bin/pytest -q tests/codec/test_codec_fuzz.py

.PHONY: codec-fuzz
