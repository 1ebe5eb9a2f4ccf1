# Writes /etc/default/hashd from systemd/default/hashd.in: @HASHD_SETTINGS@ becomes the output
# of `hashd-fcgi --print-defaults-file`, so the commented defaults are the compiled ones (like
# systemd's timesyncd.conf.in). Run by the build: cmake -DBIN= -DIN= -DOUT= -P this file.
execute_process(COMMAND ${BIN} --print-defaults-file OUTPUT_VARIABLE settings
                ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR settings STREQUAL "")
  message(FATAL_ERROR "hashd-fcgi --print-defaults-file failed (${rc}): ${err}")
endif()
file(READ ${IN} template)
string(REPLACE "@HASHD_SETTINGS@\n" "${settings}" text "${template}")
file(WRITE ${OUT} "${text}")
