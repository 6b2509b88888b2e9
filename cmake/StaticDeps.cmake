# bp_static_deps(<libs-var> <found-var>): the libraries to link GMime, GLib, PCRE2 and SQLite
# statically, as Debian's -dev packages ship them.
#
# Why: PowerMTA starts one bouncepipe process per message, and with the ~20 shared libraries
# GMime brings, the dynamic loader's symbol lookups are about half of a pipe-mode process
# (docs/performance.md).  Linking these archives in removes most of that work.  libc, and the
# libraries Debian ships no archive for (gpgme, gpg-error, libmount, libblkid, libselinux,
# libunistring), stay shared.  <found-var> is OFF (and <libs-var> incomplete) when an archive
# or a shared library is missing.
# One library: find it by NAMES (ARGN) into the cache variable VAR and add it to libs, or say
# which (WHAT) is missing and set found OFF (a macro: it works on bp_static_deps's variables).
macro(bp_static_dep var what)
  find_library(${var} NAMES ${ARGN})
  if(${var})
    list(APPEND libs ${${var}})
  else()
    set(found OFF)
    message(STATUS "static dependencies: ${what} not found")
  endif()
endmacro()

function(bp_static_deps libs_var found_var)
  set(libs "")
  set(found ON)
  foreach(name IN ITEMS gmime-3.0 gio-2.0 gobject-2.0 gmodule-2.0 glib-2.0 ffi idn2 sqlite3 pcre2-8 z)
    string(MAKE_C_IDENTIFIER "BP_STATIC_A_${name}" var)
    bp_static_dep(${var} "lib${name}.a" lib${name}.a)
  endforeach()
  # the shared rest of `pkg-config --static --libs gmime-3.0`
  foreach(name IN ITEMS unistring gpgme gpg-error mount blkid selinux)
    string(MAKE_C_IDENTIFIER "BP_STATIC_SO_${name}" var)
    bp_static_dep(${var} "shared lib${name}" ${name} lib${name}.so.2 lib${name}.so.11 lib${name}.so.0 lib${name}.so.1)
  endforeach()
  list(APPEND libs m dl pthread)
  set(${libs_var} ${libs} PARENT_SCOPE)
  set(${found_var} ${found} PARENT_SCOPE)
endfunction()
