# The Debian package `beat` (CPack DEB): exactly what `cmake --install`
# puts in place, built from the build tree with
#
#   cpack -G DEB --config <build>/CPackConfig.cmake      (or the `package` target)
#
# The .deb is an image of the install rules, so it must come from a configure
# with CMAKE_INSTALL_PREFIX=/usr (the presets' default): GNUInstallDirs then
# puts the configuration in /etc/beat, the unit's ExecStart names
# /usr/bin/beatd and /etc/beat/beatd.toml, and beatd's compiled-in default
# config is /etc/beat/beatd.toml. With any other prefix cpack refuses to
# build it (cmake/CPackProjectConfig.cmake.in) instead of shipping paths
# under /usr/local or /usr/etc. tests/package_test.sh builds, inspects,
# installs and purges it.
#
# Maintainer scripts (packaging/deb/): postinst creates the user beat
# (systemd-sysusers) and reloads systemd; it neither enables nor starts
# beatd. prerm stops beatd on removal; postrm reloads systemd.

set(BEAT_PACKAGE_MAINTAINER "Beat maintainers <maintainers@beat.invalid>"
    CACHE STRING "Maintainer field of the .deb: 'Name <address>'")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME beat)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${BEAT_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "node-local task scheduler daemon")
set(CPACK_PACKAGE_DESCRIPTION [[
beatd owns the machine's cores, one pinned worker thread per allowed
core, and runs batches of small compute tasks that any number of client
processes on the same host hand it through shared memory.
Includes beatctl, the systemd unit, the plugin ABI header, a Grafana
dashboard and a Prometheus scrape example.]])
# Everything at its absolute place: relative destinations under
# CMAKE_INSTALL_PREFIX, the configuration under CMAKE_INSTALL_FULL_SYSCONFDIR.
set(CPACK_PACKAGING_INSTALL_PREFIX "${CMAKE_INSTALL_PREFIX}")
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # beat_<version>-1_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends: from the binaries' shared libraries, by dpkg-shlibdeps (dpkg-dev).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)

# conffiles: dpkg keeps an administrator's edits across upgrades and removes
# the file only on purge. CPack lists no conffiles by itself.
file(CONFIGURE OUTPUT ${PROJECT_BINARY_DIR}/packaging/conffiles
     CONTENT "${CMAKE_INSTALL_FULL_SYSCONFDIR}/beat/beatd.toml\n")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_BINARY_DIR}/packaging/conffiles
    ${PROJECT_SOURCE_DIR}/packaging/deb/postinst
    ${PROJECT_SOURCE_DIR}/packaging/deb/prerm
    ${PROJECT_SOURCE_DIR}/packaging/deb/postrm)
# Maintainer scripts 0755, the rest 0644, whatever the checkout's modes.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

configure_file(${PROJECT_SOURCE_DIR}/cmake/CPackProjectConfig.cmake.in
               ${PROJECT_BINARY_DIR}/packaging/CPackProjectConfig.cmake @ONLY)
set(CPACK_PROJECT_CONFIG_FILE ${PROJECT_BINARY_DIR}/packaging/CPackProjectConfig.cmake)

include(CPack)
