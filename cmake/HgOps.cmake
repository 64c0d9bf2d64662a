# HgOps.cmake — what an operator installs besides the binaries: the systemd
# unit (with the install prefix written in), sysusers.d entry, man pages,
# bash completion, operations docs; libsystemd for sd_notify; CPack (DEB).
# Included from the top CMakeLists.txt before the daemon is added.

option(HG_SYSTEMD "sd_notify (Type=notify, watchdog) through libsystemd" ON)
if(HG_SYSTEMD)
  # Debian: libsystemd-dev (scripts/setup.sh installs it).
  pkg_check_modules(SYSTEMD REQUIRED IMPORTED_TARGET libsystemd)
endif()

# The unit names the binary by its installed path. `cmake --install
# --prefix P` (and CPack, which installs with DESTDIR) may choose another
# prefix than the one configured, so the unit is written at install time
# with the prefix of that install.
install(CODE "
  set(HG_UNIT \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/lib/systemd/system/hgd.service\")
  message(STATUS \"Installing: \${HG_UNIT}\")
  configure_file(\"${CMAKE_CURRENT_SOURCE_DIR}/systemd/hgd.service.in\" \"\${HG_UNIT}\" @ONLY)
  file(CHMOD \"\${HG_UNIT}\" PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
")
install(FILES systemd/hgd.sysusers DESTINATION lib/sysusers.d RENAME hgd.conf)

# Man pages: hand-written roff in docs/man, compressed at build time as
# Debian ships them.
find_program(HG_GZIP gzip REQUIRED)
set(HG_MANPAGES hgd.8 hgctl.1)
set(HG_MAN_GZ)
foreach(page ${HG_MANPAGES})
  set(src ${CMAKE_CURRENT_SOURCE_DIR}/docs/man/${page})
  set(gz ${CMAKE_CURRENT_BINARY_DIR}/man/${page}.gz)
  add_custom_command(OUTPUT ${gz}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/man
    COMMAND ${HG_GZIP} -9 -n -c ${src} > ${gz}
    DEPENDS ${src} VERBATIM)
  list(APPEND HG_MAN_GZ ${gz})
  string(REGEX REPLACE ".*\\." "" section ${page})
  install(FILES ${gz} DESTINATION share/man/man${section})
endforeach()
add_custom_target(hg_manpages ALL DEPENDS ${HG_MAN_GZ})

install(FILES cli/completion/hgctl.bash DESTINATION share/bash-completion/completions
  RENAME hgctl)
install(FILES docs/OPERATIONS.md docs/HGCTL.md docs/DESIGN.md docs/STORAGE.md
  DESTINATION share/doc/hgd OPTIONAL)
# The pristine config the package's postinst copies to /etc/hgd when absent
# (packages must not read /usr/share/doc, which may be excluded).
install(FILES systemd/hgd.conf.example DESTINATION share/hgd RENAME hgd.conf)

# ---- CPack: `cpack -G DEB` in the build directory ----------------------
set(CPACK_PACKAGE_NAME hgd)
set(CPACK_PACKAGE_VENDOR "hgd project")
set(CPACK_PACKAGE_CONTACT "hgd maintainers <hgd@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "escalation webhooks from MQTT to HTTPS (hgd, hgctl)")
set(CPACK_PACKAGE_DESCRIPTION
  "hgd takes signed escalation messages from an MQTT v5 broker, stores them
durably and POSTs them, signed, to per-Genie HTTPS webhooks with retries
and an egress guard. hgctl configures the webhooks and shows hgd's status.")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_GENERATOR DEB)
# Install with DESTDIR into the staging tree and the real prefix, so that
# the unit's ExecStart (written at install time) says /usr/bin/hgd.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# The runtime packages of the libraries hgd and hgctl link (dpkg -S on each
# NEEDED .so on Debian 12), at the versions dpkg-shlibdeps derives from the
# symbols used; tests/integration/test_ops_package.py checks both.
set(CPACK_DEBIAN_PACKAGE_DEPENDS
  "libc6 (>= 2.34), libcjson1 (>= 1.7.13), libcurl4 (>= 7.68.0), libpaho-mqtt1.3 (>= 1.3.8), libsystemd0, libwolfssl35 (>= 5.2.0)")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "ca-certificates")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "mosquitto, mosquitto-clients")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${CMAKE_CURRENT_SOURCE_DIR}/packaging/deb/postinst
  ${CMAKE_CURRENT_SOURCE_DIR}/packaging/deb/prerm
  ${CMAKE_CURRENT_SOURCE_DIR}/packaging/deb/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
include(CPack)
