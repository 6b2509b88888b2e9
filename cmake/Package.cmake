# Package.cmake - installation layout beyond the executable, and the Debian package (CPack).
#
#   make install [PREFIX=/usr/local]   binary, modules, man pages (gzipped), systemd units
#   make package                       bouncepipe_VERSION_ARCH.deb: all that, prefix /usr, plus
#                                      /etc/bouncepipe/bouncepipe.conf (a conffile) and the
#                                      maintainer scripts of packaging/deb/ (system user
#                                      bouncepipe, /var/lib/bouncepipe 0750, purge)
#
# BP_PACKAGE (set by `make package`) adds what only the package installs: the configuration
# file in /etc (a `make install` into /usr/local must not overwrite an operator's /etc) and
# Debian's documentation files.  Units and scripts name the installed binary's real path.

option(BP_PACKAGE "Install what only the Debian package ships (/etc/bouncepipe, /usr/share/doc)" OFF)

# Man pages, compressed as Debian wants them (gzip -n: no name or time stamp, reproducible).
find_program(BP_GZIP gzip REQUIRED)
set(BP_MAN_PAGES docs/bouncepipe.1 docs/bouncepipe-patterns.5)
set(BP_MAN_GZ)
foreach(page IN LISTS BP_MAN_PAGES)
  get_filename_component(name ${page} NAME)
  set(gz ${CMAKE_BINARY_DIR}/man/${name}.gz)
  add_custom_command(OUTPUT ${gz}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
    COMMAND ${BP_GZIP} -9nc ${CMAKE_SOURCE_DIR}/${page} > ${gz}
    DEPENDS ${CMAKE_SOURCE_DIR}/${page} VERBATIM)
  list(APPEND BP_MAN_GZ ${gz})
endforeach()
add_custom_target(manpages ALL DEPENDS ${BP_MAN_GZ})
list(GET BP_MAN_GZ 0 BP_MAN1)
list(GET BP_MAN_GZ 1 BP_MAN5)
install(FILES ${BP_MAN1} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${BP_MAN5} DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)

# systemd units: /lib/systemd/system for the package (Debian 12), PREFIX/lib/systemd/system
# otherwise (systemd reads /usr/local/lib/systemd/system too).  The binary's path in them is
# the installed one.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(BP_SYSTEMD_UNITDIR_DEFAULT /lib/systemd/system)
else()
  set(BP_SYSTEMD_UNITDIR_DEFAULT ${CMAKE_INSTALL_PREFIX}/lib/systemd/system)
endif()
set(BP_SYSTEMD_UNITDIR ${BP_SYSTEMD_UNITDIR_DEFAULT} CACHE PATH "Where the systemd units go")
file(GLOB BP_UNITS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/contrib/systemd/*.service
     ${CMAKE_SOURCE_DIR}/contrib/systemd/*.timer)
foreach(unit IN LISTS BP_UNITS)
  get_filename_component(name ${unit} NAME)
  file(READ ${unit} text)
  string(REPLACE "/usr/bin/bouncepipe" "${CMAKE_INSTALL_FULL_BINDIR}/bouncepipe" text "${text}")
  file(WRITE ${CMAKE_BINARY_DIR}/systemd/${name} "${text}")
  install(FILES ${CMAKE_BINARY_DIR}/systemd/${name} DESTINATION ${BP_SYSTEMD_UNITDIR})
endforeach()

# contrib's configuration examples, so that the set-up documents work from the package alone
install(FILES contrib/postfix/README.md contrib/postfix/main.cf contrib/postfix/master.cf contrib/postfix/transport
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples/postfix)
install(FILES contrib/powermta/bouncepipe.conf contrib/powermta/bouncepipe.pmta.conf contrib/powermta/README.md
              contrib/powermta/signals.md DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples/powermta)
install(PROGRAMS contrib/powermta/bouncepipe-hold-vmta DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples/powermta)
install(FILES contrib/powermta/check-dsn.eml DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

if(BP_PACKAGE)
  install(FILES packaging/deb/bouncepipe.conf DESTINATION /etc/bouncepipe)
  set(BP_DOC_GZ ${CMAKE_BINARY_DIR}/changelog.gz) # a native package: changelog.gz
  add_custom_command(OUTPUT ${BP_DOC_GZ}
    COMMAND ${BP_GZIP} -9nc ${CMAKE_SOURCE_DIR}/packaging/deb/changelog > ${BP_DOC_GZ}
    DEPENDS ${CMAKE_SOURCE_DIR}/packaging/deb/changelog VERBATIM)
  add_custom_target(debian_changelog ALL DEPENDS ${BP_DOC_GZ})
  install(FILES ${BP_DOC_GZ} packaging/deb/copyright DESTINATION ${CMAKE_INSTALL_DOCDIR})
endif()

# ---- CPack: one .deb -----------------------------------------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME bouncepipe)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "bouncepipe maintainers <bouncepipe@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "turn bounces, complaints and auto-replies into a suppression list")
set(CPACK_PACKAGE_DESCRIPTION
    "bouncepipe reads the mail that comes back to a bulk sender (delivery status\n\
notifications, non-standard bounce texts, feedback-loop complaints and\n\
auto-replies) and PowerMTA's accounting stream, and keeps a suppression list\n\
that list software can trust, in SQLite or PostgreSQL. An MTA pipes returned\n\
mail to `bouncepipe pipe`.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION mail)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "default-mta | mail-transport-agent")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/packaging/deb/conffiles ${CMAKE_SOURCE_DIR}/packaging/deb/postinst
    ${CMAKE_SOURCE_DIR}/packaging/deb/prerm ${CMAKE_SOURCE_DIR}/packaging/deb/postrm)
set(CPACK_STRIP_FILES ON)
set(CPACK_SOURCE_IGNORE_FILES "/build.*/;/\\\\.git/")
include(CPack)
