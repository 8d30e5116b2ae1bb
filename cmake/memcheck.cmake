# `cmake --build build --target memcheck`: the C examples (linked against the
# shared library of this build tree) under valgrind. Any memory error or a
# definite/indirect leak fails the target. "Still reachable" blocks (Rust's std
# keeps some process-lifetime allocations) are not leaks and are not shown.
find_program(VALGRIND valgrind)
if(NOT VALGRIND)
  add_custom_target(memcheck
    COMMAND "${CMAKE_COMMAND}" -E echo "memcheck needs valgrind (apt-get install valgrind)"
    COMMAND "${CMAKE_COMMAND}" -E false)
  return()
endif()

set(_vg "${VALGRIND}" --quiet --error-exitcode=1 --leak-check=full
        --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect)
add_custom_target(memcheck
  COMMAND ${_vg} $<TARGET_FILE:c_copy>
  COMMAND ${_vg} $<TARGET_FILE:c_zero_copy>
  COMMAND ${_vg} $<TARGET_FILE:c_side_handles>
  COMMAND ${_vg} $<TARGET_FILE:c_errors>
  COMMAND ${_vg} $<TARGET_FILE:c_threads> 20000   # fewer messages: valgrind is slow
  COMMAND sh "${CMAKE_CURRENT_LIST_DIR}/run-ipc-pair.sh"
          $<TARGET_FILE:c_ipc_producer> $<TARGET_FILE:c_ipc_consumer> ${_vg}
  COMMAND "${CMAKE_COMMAND}" -E env PSYNE_TCP_PAIR_COUNT=200   # fewer messages: valgrind is slow
          sh "${CMAKE_CURRENT_LIST_DIR}/run-tcp-pair.sh"
          $<TARGET_FILE:c_tcp_echo_server> $<TARGET_FILE:c_tcp_echo_client> ${_vg}
  DEPENDS c_copy c_zero_copy c_side_handles c_errors c_threads c_ipc_producer c_ipc_consumer
          c_tcp_echo_server c_tcp_echo_client
  COMMENT "valgrind --leak-check=full on the C examples"
  USES_TERMINAL
  VERBATIM)
unset(_vg)
