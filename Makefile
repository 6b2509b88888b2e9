# Convenience wrapper around CMake: the two quick-start commands of the README.
#   make demo   install what is missing, build, replay the bundled fixtures, show the result
#   make check  install what is missing, build with -Werror, run every test, then again
#               under AddressSanitizer + UndefinedBehaviorSanitizer and against the static
#               build, and the style checks
# Other targets: deps (build packages), deps-test (all test packages), build, test, asan, static, valgrind-broken, fuzz, format, format-check, lint, clean,
# bench (python3 bench/run.py $(BENCH_ARGS): see docs/performance.md),
# install (PREFIX=/usr/local by default: binary, modules, man pages, systemd units; DESTDIR works),
# package (a .deb in $(PACKAGE_BUILD)/; PACKAGE_STATIC=ON packs the static build's binary),
# package-test (build, install, use, lint and purge the .deb: needs root),
# docs-test (run contrib/postfix's and contrib/powermta's README.md commands as written on the installed package).

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
STATIC_BUILD ?= build-static
PACKAGE_BUILD ?= build-package
PACKAGE_STATIC ?= OFF
# Where `make install` puts bouncepipe (the package uses /usr).  Changing it needs a fresh
# configure, which install does: the module directory is compiled into the binary.
PREFIX     ?= /usr/local
FUZZ_SECONDS ?= 15
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
# What building (and so `make demo`) needs; libpq-dev builds the PostgreSQL store module,
# libcurl4-openssl-dev the webhook transport module; libxml2-dev, zlib1g-dev, libzip-dev read
# DMARC aggregate reports (XML, gzip, zip).
BUILD_PACKAGES = cmake make gcc pkg-config python3 libgmime-3.0-dev libpcre2-dev libsqlite3-dev \
                 libcmocka-dev sqlite3 libpq-dev libcurl4-openssl-dev libxml2-dev zlib1g-dev libzip-dev
# What the whole test suite (`make check`) needs on top.
# postfix: tests/system/postfix_e2e.sh runs a private instance; preseeded "No configuration" so the
# package never configures or starts a system MTA.
# postgresql: tests/system/pg_*.sh start a private cluster from /usr/lib/postgresql/*/bin in a
# temporary directory; the package's own cluster is not used.
# chromium: tests/system/html_browser.py loads the HTML report headless.
# dpkg-dev (dpkg-shlibdeps), fakeroot, lintian, man-db, adduser: tests/system/package.sh builds,
# installs, lints and purges the .deb; tests/system/docs_postfix.sh uses the installed package.
# swaks: contrib/powermta/README.md's check sends its DSN with it (tests/system/docs_powermta.sh).
TEST_PACKAGES = $(BUILD_PACKAGES) clang-format cppcheck valgrind clang libclang-rt-14-dev postfix postgresql \
                chromium dpkg-dev fakeroot lintian man-db adduser swaks
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps deps-test build test asan static check demo format format-check lint clean valgrind-broken fuzz bench \
        install package package-test docs-test

all: build

# Install whichever of $(PACKAGES) are missing (Debian).
deps deps-test:
	@missing=""; for p in $(if $(filter deps-test,$@),$(TEST_PACKAGES),$(BUILD_PACKAGES)); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "installing:$$missing"; \
	    echo "postfix postfix/main_mailer_type select No configuration" | $(SUDO) debconf-set-selections; \
	    $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

build: deps
	cmake -S . -B $(BUILD) -DBP_WERROR=ON >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

test: deps-test build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

asan: deps-test
	cmake -S . -B $(ASAN_BUILD) -DBP_WERROR=ON -DBP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    ctest --output-on-failure -j $(JOBS)

format:
	find src include tests bench -name '*.[ch]' | xargs clang-format -i

format-check: deps-test
	find src include tests bench -name '*.[ch]' | xargs clang-format --dry-run --Werror

lint: deps-test build
	cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability,performance \
	    --suppress=missingIncludeSystem --inline-suppr -I include src

# The broken corpus (fixtures/broken/README.md) under valgrind, on the plain build.
valgrind-broken: deps-test build
	tests/system/broken_run.sh $(BUILD)/bouncepipe --valgrind

# libFuzzer harnesses (clang, ASan+UBSan): replay every seed, then fuzz each FUZZ_SECONDS.
fuzz: deps-test
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DBP_BUILD_FUZZERS=ON -DBP_SANITIZE=ON -DBP_BUILD_TESTS=OFF >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzzers
	tests/fuzz/run_fuzzers.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# The build for busy MTA hosts (-DBP_STATIC_DEPS=ON: GMime, GLib, PCRE2, SQLite linked in):
# the same tests against it, but for the PostgreSQL ones (the backend is the same module).
static: deps-test
	cmake -S . -B $(STATIC_BUILD) -DBP_WERROR=ON -DBP_STATIC_DEPS=ON >/dev/null
	cmake --build $(STATIC_BUILD) -j $(JOBS)
	cd $(STATIC_BUILD) && ctest --output-on-failure -j $(JOBS) -E 'pg_|postfix'

# Install the way a built tree is installed by hand: PREFIX (default /usr/local), DESTDIR.
install: deps
	cmake -S . -B $(BUILD) -DBP_WERROR=ON -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)
	cmake --install $(BUILD)

# The Debian package (CPack DEB), prefix /usr, with /etc/bouncepipe/bouncepipe.conf.
package: deps
	cmake -S . -B $(PACKAGE_BUILD) -DBP_WERROR=ON -DBP_PACKAGE=ON -DBP_BUILD_TESTS=OFF \
	    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr -DBP_STATIC_DEPS=$(PACKAGE_STATIC) >/dev/null
	cmake --build $(PACKAGE_BUILD) -j $(JOBS)
	cd $(PACKAGE_BUILD) && cpack -G DEB
	@ls $(PACKAGE_BUILD)/bouncepipe_*.deb

# Install the .deb with apt-get, use it as the bouncepipe user, lintian, purge (root only).
package-test: deps-test package
	tests/system/package.sh $$(ls $(PACKAGE_BUILD)/bouncepipe_*.deb | tail -n 1)

# contrib/postfix/README.md's command blocks, as written, against a private Postfix on
# loopback, then contrib/powermta/README.md's against the PowerMTA stand-in of
# tests/system/pmta_standin.py, with bouncepipe installed from the package (root only).
docs-test: deps-test package
	tests/system/docs_postfix.sh $$(ls $(PACKAGE_BUILD)/bouncepipe_*.deb | tail -n 1)
	tests/system/docs_powermta.sh $$(ls $(PACKAGE_BUILD)/bouncepipe_*.deb | tail -n 1)

check: test asan static valgrind-broken fuzz format-check lint package-test docs-test
	@echo "check: all tests passed (plain, ASan+UBSan and static, the package, the set-up documents), format and lint clean"

# Benchmark: medians of replay and pipe mode against floor programs (builds build-bench).
bench: deps
	python3 bench/run.py $(BENCH_ARGS)

demo: build
	rm -f bouncepipe.db bouncepipe.db-wal bouncepipe.db-shm
	@# the bundled messages (fixtures/broken/ is left out: it is hostile input for the tests)
	$(BUILD)/bouncepipe replay --db bouncepipe.db --format text \
	    $$(find fixtures -path fixtures/broken -prune -o \( -name '*.eml' -o -name '*.mbox' \) -print | sort)
	@echo; echo "== suppressed in ./bouncepipe.db, and why (bouncepipe export --format text) =="
	$(BUILD)/bouncepipe export --db bouncepipe.db --format text
	@echo; echo "== counts (bouncepipe stats; details: bouncepipe lookup ADDRESS) =="
	$(BUILD)/bouncepipe stats --db bouncepipe.db --top 5

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(STATIC_BUILD) $(PACKAGE_BUILD)
