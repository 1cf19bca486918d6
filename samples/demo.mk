# samples/demo.mk — the Python risk report of `make demo`, and its test.
# Included by the top-level Makefile (-include samples/demo.mk).
#
#   make risk-report   samples/risk_report.py on build/samples/libsamples.so:
#                      an option book with every Greek checked against finite
#                      differences, a GARCH(1,1) fit and a one-year walk-forward
#                      volatility backtest, timings; writes demo-output/
#                      (report.txt and PNG pictures).  Part of `make demo`.
#   make demo-tests    pytest tests/demo (the report's numerical parts on small
#                      sizes); part of `make test`.
#
# Market data are generated from fixed seeds (samples/market_data.py), so the
# report is the same on every machine and needs no network.

DEB_PACKAGES += python3-matplotlib python3-scipy
EXTRA_DEMOS  += risk-report
EXTRA_TESTS  += demo-tests

DEMO_OUT     ?= demo-output
DEMO_PY      := samples/risk_report.py samples/market_data.py samples/garch_fit.py

.PHONY: risk-report demo-tests

# after the C demos when both run (make -j)
risk-report: python-binding $(B)/samples/libsamples.so $(if $(filter demo,$(MAKECMDGOALS)),demo-c)
	PYTHONPATH=$(CURDIR)/$(PYB):$(CURDIR)/samples PYTHONDONTWRITEBYTECODE=1 MPLBACKEND=Agg \
	  $(PYTHON) -P samples/risk_report.py --lib $(B)/samples/libsamples.so --out $(DEMO_OUT)

demo-tests: python-binding $(B)/samples/libsamples.so
	cd tests/demo && TWINC_BUILD=$(CURDIR)/$(B) PYTHONPATH=$(CURDIR)/$(PYB):$(CURDIR)/samples \
	  PYTHONDONTWRITEBYTECODE=1 MPLBACKEND=Agg $(PYTHON) -m pytest -q -p no:cacheprovider .
