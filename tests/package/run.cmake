# Installs xgrad from BUILD_DIR into a temporary prefix, then configures, builds and runs the
# downstream project against it. Usage: cmake -DBUILD_DIR=... -DWORK_DIR=... -DSOURCE_DIR=...
# [-DEXPECT_DIST=ON -DMPIEXEC=mpirun] -P run.cmake; with EXPECT_DIST, xgrad::dist must be
# installed too, and its program runs alone and under MPIEXEC with 2 ranks.

# Runs the command after `what`; a non-zero status stops the script saying what failed.
function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc TIMEOUT 600)
  if(rc)
    message(FATAL_ERROR "${what} failed: ${rc}")
  endif()
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
run("cmake --install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
# The installed headers mirror the source tree's rooms.
foreach(header xgrad.hpp autograd/var.hpp layers/module.hpp layers/reference/rnn.hpp optim/adam.hpp
               data/data.hpp io/checkpoint.hpp)
  if(NOT EXISTS ${prefix}/include/xgrad/${header})
    message(FATAL_ERROR "the install has no include/xgrad/${header}")
  endif()
endforeach()
if(EXPECT_DIST)
  foreach(header dist.hpp dist/dist.hpp)
    if(NOT EXISTS ${prefix}/include/xgrad/${header})
      message(FATAL_ERROR "xgrad::dist was built but the install has no include/xgrad/${header}")
    endif()
  endforeach()
endif()
run("configuring the downstream project" ${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/package/downstream
    -B ${WORK_DIR}/build -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release)
run("building the downstream project" ${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run("the downstream program" ${WORK_DIR}/build/app)
run("the downstream contract program" ${WORK_DIR}/build/contract)
if(EXPECT_DIST)
  if(NOT EXISTS ${WORK_DIR}/build/dist_app)
    message(FATAL_ERROR "xgrad::dist was built but the downstream project did not get it from find_package(xgrad)")
  endif()
  run("the downstream dist program alone" ${WORK_DIR}/build/dist_app)
  run("the downstream dist program under ${MPIEXEC} -np 2" ${MPIEXEC} --oversubscribe -np 2 ${WORK_DIR}/build/dist_app)
endif()
