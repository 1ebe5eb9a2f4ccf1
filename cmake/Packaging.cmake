# Install rules for everything around the binary, and the Debian package (`make deb`,
# i.e. `cpack -G DEB` in the build directory).
#
# The package is what the Ansible hashd role installs: binary, systemd units, sysusers/
# tmpfiles snippets, /etc/default/hashd (a conffile, so local edits survive upgrades) and
# the nginx Jinja2 templates the nginx role renders. Paths follow Debian 12 conventions:
# units in /lib/systemd/system (bookworm's dpkg still ships there), the rest under /usr.
# The binary itself is installed by fcgi-app/CMakeLists.txt to ${CMAKE_INSTALL_BINDIR}.

set(HASHD_PKG_DIR ${CMAKE_BINARY_DIR}/packaging)
set(HASHD_PACKAGE_MAINTAINER "hashd maintainers <hashd-maintainers@example.org>"
    CACHE STRING "Maintainer field of the .deb and its changelog")

# systemd integration.
install(FILES systemd/hashd@.service systemd/hashd.target systemd/hashd-worker.service
        DESTINATION /lib/systemd/system
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
install(FILES systemd/sysusers.d/hashd.conf DESTINATION lib/sysusers.d
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
install(FILES systemd/tmpfiles.d/hashd.conf DESTINATION lib/tmpfiles.d
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
# /etc/default/hashd's commented defaults are the compiled ones: generated from the binary.
add_custom_command(OUTPUT ${HASHD_PKG_DIR}/default/hashd
                   COMMAND ${CMAKE_COMMAND} -DBIN=$<TARGET_FILE:hashd-fcgi>
                           -DIN=${CMAKE_SOURCE_DIR}/systemd/default/hashd.in
                           -DOUT=${HASHD_PKG_DIR}/default/hashd
                           -P ${CMAKE_SOURCE_DIR}/cmake/defaults-file.cmake
                   DEPENDS hashd-fcgi ${CMAKE_SOURCE_DIR}/systemd/default/hashd.in
                           ${CMAKE_SOURCE_DIR}/cmake/defaults-file.cmake VERBATIM)
# It may hold the store's password (HASHD_STORE): root only, 0600 (systemd reads it as root).
install(FILES ${HASHD_PKG_DIR}/default/hashd DESTINATION /etc/default
        PERMISSIONS OWNER_READ OWNER_WRITE)

# nginx templates (the Ansible nginx role and scripts/render-nginx render them).
install(DIRECTORY nginx/ DESTINATION ${CMAKE_INSTALL_DATADIR}/hashd/nginx
        FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
        DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                              WORLD_READ WORLD_EXECUTE
        FILES_MATCHING PATTERN "*.j2" PATTERN "README.md")

# Documentation Debian policy requires: copyright and a changelog.
file(MAKE_DIRECTORY ${HASHD_PKG_DIR}/doc)
file(WRITE ${HASHD_PKG_DIR}/doc/copyright
"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: hashd
Source: see the project repository

Files: *
Copyright: 2026 the hashd authors
License: none-granted
 No license has been granted for redistribution; internal use only.
")
string(TIMESTAMP HASHD_PKG_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
file(WRITE ${HASHD_PKG_DIR}/doc/changelog
"hashd (${PROJECT_VERSION}) unstable; urgency=medium

  * Build ${HASHD_COMMIT}.

 -- ${HASHD_PACKAGE_MAINTAINER}  ${HASHD_PKG_DATE}
")
add_custom_command(OUTPUT ${HASHD_PKG_DIR}/doc/changelog.gz
                   COMMAND gzip -9nc ${HASHD_PKG_DIR}/doc/changelog > ${HASHD_PKG_DIR}/doc/changelog.gz
                   DEPENDS ${HASHD_PKG_DIR}/doc/changelog VERBATIM)

# A man page generated from `hashd-fcgi --help`, so the two never disagree.
file(WRITE ${HASHD_PKG_DIR}/manpage.cmake
[=[execute_process(COMMAND ${BIN} --help OUTPUT_VARIABLE help ERROR_VARIABLE help_err
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "hashd-fcgi --help failed (${rc}): ${help_err}")
endif()
string(REPLACE "\\" "\\e" help "${help}")
string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" help "${help}")
file(WRITE ${OUT} ".TH HASHD-FCGI 1 \"\" \"hashd ${VERSION}\" \"User Commands\"
.SH NAME
hashd-fcgi \\- bcrypt password hashing and message digest FastCGI service
.SH SYNOPSIS
.B spawn-fcgi \\-n \\-s
.I SOCKET
.B \\-M 0660 \\-\\- hashd-fcgi
.RI [ OPTIONS ]
.SH DESCRIPTION
The text of
.BR \"hashd-fcgi --help\" :
.PP
.nf
${help}
.fi
.SH FILES
.TP
.I /etc/default/hashd
settings of every worker (HASHD_* environment variables)
.TP
.I /lib/systemd/system/hashd@.service
one worker per instance; hashd.target groups them
.SH SEE ALSO
.BR spawn-fcgi (1),
.BR systemctl (1),
.BR journalctl (1)
")
]=])
add_custom_command(OUTPUT ${HASHD_PKG_DIR}/hashd-fcgi.1.gz
                   COMMAND ${CMAKE_COMMAND} -DBIN=$<TARGET_FILE:hashd-fcgi> -DVERSION=${PROJECT_VERSION}
                           -DOUT=${HASHD_PKG_DIR}/hashd-fcgi.1 -P ${HASHD_PKG_DIR}/manpage.cmake
                   COMMAND gzip -9nf ${HASHD_PKG_DIR}/hashd-fcgi.1
                   DEPENDS hashd-fcgi ${HASHD_PKG_DIR}/manpage.cmake VERBATIM)
# hashd-worker's man page, from its --help likewise (Debian policy: every binary has one;
# lintian's no-manual-page, gated in tests/security).
file(WRITE ${HASHD_PKG_DIR}/manpage-worker.cmake
[=[execute_process(COMMAND ${BIN} --help OUTPUT_VARIABLE help ERROR_VARIABLE help_err
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "hashd-worker --help failed (${rc}): ${help_err}")
endif()
string(REPLACE "\\" "\\e" help "${help}")
string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" help "${help}")
file(WRITE ${OUT} ".TH HASHD-WORKER 1 \"\" \"hashd ${VERSION}\" \"User Commands\"
.SH NAME
hashd-worker \\- MultiVAC job queue consumer of hashd
.SH SYNOPSIS
.B hashd-worker
.RI [ OPTIONS ]
.SH DESCRIPTION
.nf
${help}
.fi
.SH SEE ALSO
.BR hashd-fcgi (1)
")
]=])
add_custom_command(OUTPUT ${HASHD_PKG_DIR}/hashd-worker.1.gz
                   COMMAND ${CMAKE_COMMAND} -DBIN=$<TARGET_FILE:hashd-worker> -DVERSION=${PROJECT_VERSION}
                           -DOUT=${HASHD_PKG_DIR}/hashd-worker.1 -P ${HASHD_PKG_DIR}/manpage-worker.cmake
                   COMMAND gzip -9nf ${HASHD_PKG_DIR}/hashd-worker.1
                   DEPENDS hashd-worker ${HASHD_PKG_DIR}/manpage-worker.cmake VERBATIM)
add_custom_target(hashd-package-docs ALL
                  DEPENDS ${HASHD_PKG_DIR}/doc/changelog.gz ${HASHD_PKG_DIR}/hashd-fcgi.1.gz
                          ${HASHD_PKG_DIR}/hashd-worker.1.gz
                          ${HASHD_PKG_DIR}/default/hashd)
install(FILES ${HASHD_PKG_DIR}/doc/copyright ${HASHD_PKG_DIR}/doc/changelog.gz
        DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/hashd
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
install(FILES ${HASHD_PKG_DIR}/hashd-fcgi.1.gz ${HASHD_PKG_DIR}/hashd-worker.1.gz
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man1
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

# Maintainer scripts. postinst creates the user and /run/hashd right away (the same
# snippets systemd applies at boot), and restarts running workers one at a time on upgrade
# so nginx always has a live socket. Enabling instances is the operator's (Ansible's) job:
# how many there are is a per-machine choice.
file(WRITE ${HASHD_PKG_DIR}/postinst
[=[#!/bin/sh
set -e
if [ "$1" = "configure" ]; then
    if command -v systemd-sysusers >/dev/null 2>&1; then
        systemd-sysusers hashd.conf
    else
        getent group hashd >/dev/null || addgroup --system hashd
        getent group hashd-sock >/dev/null || addgroup --system hashd-sock
        getent passwd hashd >/dev/null || adduser --system --ingroup hashd \
            --home /var/lib/hashd --no-create-home --shell /usr/sbin/nologin hashd
        if getent passwd www-data >/dev/null; then adduser www-data hashd-sock >/dev/null; fi
    fi
    # nginx's user reaches the sockets through group hashd-sock only; older packages put it
    # in group hashd, which owns the store (issue 21, finding 5). It leaves hashd below, once
    # the restarted workers' sockets belong to hashd-sock, so nginx can always connect.
    migrate=""
    if id -nG www-data 2>/dev/null | tr ' ' '\n' | grep -qx hashd; then migrate=1; fi
    # The settings may hold the store's password: root only (systemd reads the file as root
    # before dropping to User=hashd); an administrator's dpkg-statoverride wins.
    if ! dpkg-statoverride --list /etc/default/hashd >/dev/null 2>&1; then
        chown root:root /etc/default/hashd
        chmod 0600 /etc/default/hashd
    fi
    if command -v systemd-tmpfiles >/dev/null 2>&1; then
        systemd-tmpfiles --create hashd.conf
    fi
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload >/dev/null || true
        # New nginx workers pick up hashd-sock (and still have hashd) before the sockets move.
        if [ -n "$migrate" ]; then systemctl try-reload-or-restart nginx.service || true; fi
        if [ -n "$2" ]; then
            for unit in $(systemctl list-units --plain --no-legend --state=active 'hashd@*.service' | awk '{print $1}'); do
                systemctl restart "$unit" || true
            done
            # The MultiVAC worker picks up the new binary too (its queue waits meanwhile).
            if systemctl is-active --quiet hashd-worker.service; then
                systemctl restart hashd-worker.service || true
            fi
        fi
    fi
    if [ -n "$migrate" ]; then
        gpasswd -d www-data hashd >/dev/null
        if [ -d /run/systemd/system ]; then systemctl try-reload-or-restart nginx.service || true; fi
    fi
fi
exit 0
]=])
file(WRITE ${HASHD_PKG_DIR}/prerm
[=[#!/bin/sh
set -e
if [ "$1" = "remove" ] && [ -d /run/systemd/system ]; then
    systemctl stop hashd.target 'hashd@*.service' hashd-worker.service >/dev/null 2>&1 || true
fi
exit 0
]=])
file(WRITE ${HASHD_PKG_DIR}/postrm
[=[#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null || true
fi
exit 0
]=])
# lintian's warnings that are decisions, each with its reason (tests/security checks that
# every override has one, and that lintian finds nothing else).
file(WRITE ${HASHD_PKG_DIR}/lintian-overrides
[=[# Upgrades restart the running hashd@N instances one at a time (so nginx always has a live
# socket), and removal stops them all: both need the instance list of
# `systemctl list-units 'hashd@*'` and a glob, which deb-systemd-invoke does not take.
hashd: maintainer-script-calls-systemctl [postinst:*]
hashd: maintainer-script-calls-systemctl [prerm:*]
# /etc/default/hashd may hold the message store's password (HASHD_STORE): root only (systemd
# reads it as root), never readable by nginx's user or anyone else.
hashd: non-standard-file-perm 0600 != 0644 [etc/default/hashd]
# hashd.target is the package's own target grouping the hashd@N instances (how many is a
# per-machine choice); it is what an operator starts, stops and restarts as one.
hashd: systemd-service-file-refers-to-unusual-wantedby-target hashd.target [lib/systemd/system/hashd@.service]
]=])
install(FILES ${HASHD_PKG_DIR}/lintian-overrides DESTINATION ${CMAKE_INSTALL_DATADIR}/lintian/overrides
        RENAME hashd PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

# /etc/default/hashd is the operator's: dpkg keeps local edits across upgrades.
file(WRITE ${HASHD_PKG_DIR}/conffiles "/etc/default/hashd\n")
file(CHMOD ${HASHD_PKG_DIR}/postinst ${HASHD_PKG_DIR}/prerm ${HASHD_PKG_DIR}/postrm
     PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)

set(CPACK_PACKAGE_NAME hashd)
set(CPACK_PACKAGE_VENDOR "hashd")
set(CPACK_PACKAGE_CONTACT "${HASHD_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_GENERATOR DEB)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# CPack indents the lines after the first (the synopsis) itself.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "bcrypt password hashing and message digest service
hashd serves bcrypt hashing (POST /v1/hash, /v1/verify) and a
content-addressed message store over FastCGI behind nginx: one
spawn-fcgi process per unix socket, supervised by systemd
(hashd@N.service, hashd.target), settings in /etc/default/hashd.
hashd-worker.service consumes the MultiVAC job queue.")
# Library dependencies come from dpkg-shlibdeps; the rest are named here.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "spawn-fcgi, adduser")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "nginx")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${HASHD_PKG_DIR}/conffiles ${HASHD_PKG_DIR}/postinst ${HASHD_PKG_DIR}/prerm ${HASHD_PKG_DIR}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# Only the service goes into the package (not the benchmark tools or tests).
set(CPACK_COMPONENTS_ALL Unspecified)
include(CPack)
