# samples/demo.mk — the Python risk report of `make demo`, and its test.
# Included by the top-level Makefile (-include samples/demo.mk).
#
#   make risk-report   samples/risk_report.py on build/samples/libsamples.so:
#                      an option book with every Greek checked against finite
#                      differences, a GARCH(1,1) fit and a one-year walk-forward
#                      volatility backtest, timings; writes demo-output/
#                      (report.txt and PNG pictures).  Part of `make demo`.
#   make demo-tests    twinc check of the report's own kernels (samples/barrier_bb.c,
#                      build/samples/libdemo.so) and pytest tests/demo (the report's
#                      numerical parts on small sizes); part of `make test`.
#
# Market data are generated from fixed seeds (samples/market_data.py), so the
# report is the same on every machine and needs no network.

DEB_PACKAGES += python3-matplotlib python3-scipy
EXTRA_DEMOS  += risk-report
EXTRA_TESTS  += demo-tests

DEMO_OUT     ?= demo-output
# kernels only the report uses, through twinc like the other samples
DEMO_KERNELS := barrier_bb
DEMO_LIB     := $(B)/samples/libdemo.so

.PHONY: risk-report demo-tests

$(DEMO_LIB): $(DEMO_KERNELS:%=samples/%.c) $(DEMO_KERNELS:%=$(B)/samples/%.twin.c) $(DEMO_KERNELS:%=$(B)/samples/%.warn)
	$(CC) $(CFLAGS_TWIN) -shared -I$(B)/samples $(DEMO_KERNELS:%=samples/%.c) $(DEMO_KERNELS:%=$(B)/samples/%.twin.c) -o $@ -lm

# after the C demos when both run (make -j)
risk-report: python-binding $(B)/samples/libsamples.so $(DEMO_LIB) $(if $(filter demo,$(MAKECMDGOALS)),demo-c)
	PYTHONPATH=$(CURDIR)/$(PYB):$(CURDIR)/samples PYTHONDONTWRITEBYTECODE=1 MPLBACKEND=Agg \
	  $(PYTHON) -P samples/risk_report.py --lib $(B)/samples/libsamples.so --extra-lib $(DEMO_LIB) --out $(DEMO_OUT)

demo-tests: python-binding $(B)/samples/libsamples.so $(DEMO_LIB) $(B)/twinc
	$(B)/twinc check $(DEMO_LIB) > /dev/null
	cd tests/demo && TWINC_BUILD=$(CURDIR)/$(B) PYTHONPATH=$(CURDIR)/$(PYB):$(CURDIR)/samples \
	  PYTHONDONTWRITEBYTECODE=1 MPLBACKEND=Agg $(PYTHON) -m pytest -q -p no:cacheprovider .
