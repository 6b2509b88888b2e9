# Build options of bouncepipe (libssh habit: options in one place).
option(BP_BUILD_TESTS "Build the cmocka unit tests and golden tests" ON)
option(BP_BUILD_FUZZERS "Build the libFuzzer harnesses (needs clang)" OFF)
option(BP_WERROR "Treat warnings as errors (CI turns this on)" OFF)
option(BP_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
option(BP_STATIC_DEPS "Link GMime, GLib, PCRE2 and SQLite statically: faster start-up in pipe mode (cmake/StaticDeps.cmake)" OFF)
option(BP_WITH_POSTGRES "Build the PostgreSQL store backend (needs libpq; skipped with a notice when it is missing)" ON)

if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE RelWithDebInfo CACHE STRING "Build type" FORCE)
endif()
