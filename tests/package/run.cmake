# Installs xgrad from BUILD_DIR into a temporary prefix, then configures, builds and runs the
# downstream project against it. Usage: cmake -DBUILD_DIR=... -DWORK_DIR=... -DSOURCE_DIR=... -P run.cmake
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix} RESULT_VARIABLE rc OUTPUT_QUIET)
if(rc)
  message(FATAL_ERROR "cmake --install failed: ${rc}")
endif()
# The installed headers mirror the source tree's rooms.
foreach(header xgrad.hpp autograd/var.hpp layers/module.hpp layers/reference/rnn.hpp optim/adam.hpp
               data/data.hpp io/checkpoint.hpp)
  if(NOT EXISTS ${prefix}/include/xgrad/${header})
    message(FATAL_ERROR "the install has no include/xgrad/${header}")
  endif()
endforeach()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/package/downstream -B ${WORK_DIR}/build
                        -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "configuring the downstream project failed: ${rc}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/build RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "building the downstream project failed: ${rc}")
endif()
execute_process(COMMAND ${WORK_DIR}/build/app RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "the downstream program failed: ${rc}")
endif()
