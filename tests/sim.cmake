# sim.cmake — simulator tests: unit tests, seed sweeps with the determinism check, scenarios,
# the broken-scenario reproduction check, and the checked-in regression seeds and fuzz inputs.

orrery_add_test(test_sim SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sim.c
    LIBS orrery_sim_runner orrery_sim orrery_servers orrery_core orrery_hal_host LABELS sim)

set(_scn ${CMAKE_SOURCE_DIR}/scenarios)
set(_sim $<TARGET_FILE:orrery>)

# 100 seeds of the default scenario, each run twice and compared (the CI sweep).
add_test(NAME sim_default_100_seeds
    COMMAND ${_sim} sim --seeds 1..100 --check-determinism --quiet)
foreach(s chaos crash)
    add_test(NAME sim_${s}_50_seeds
        COMMAND ${_sim} sim ${_scn}/${s}.scn --seeds 1..50 --check-determinism --quiet)
endforeach()
# Shards 0/2 and 1/2 together cover the range.
add_test(NAME sim_shards
    COMMAND sh -c "${_sim} sim --seeds 1..10 --shard 0/2 --quiet | grep -q '5 seed(s)' && ${_sim} sim --seeds 1..10 --shard 1/2 --quiet | grep -q '5 seed(s)'")
add_test(NAME sim_usage_errors
    COMMAND sh -c "${_sim} sim --seeds 5..1; test $? -eq 2 && ${_sim} sim --faults boom; test $? -eq 2 && ${_sim} sim --shard 2/2; test $? -eq 2")

# A deliberately broken scenario fails (exit 1), and its printed reproduction command fails the
# same way (the exact FAIL line comes back).
add_test(NAME sim_broken_scenario_reproduces
    COMMAND sh -c "out=$(${_sim} sim ${_scn}/broken.scn --seeds 3..5 --quiet); test $? -eq 1 || exit 1; cmd=$(printf '%s\\n' \"$out\" | sed -n 's/^  reproduce: //p' | head -n 1); fail=$(printf '%s\\n' \"$out\" | grep '^FAIL' | head -n 1); test -n \"$cmd\" || exit 1; again=$($cmd --quiet); test $? -eq 1 || exit 1; printf '%s\\n' \"$again\" | grep -qxF \"$fail\" && echo \"reproduced: $fail\"")

# Regressions: each line of tests/regress/sim-seeds.txt is "SCENARIO SEED FAULTS".
if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/regress/sim-seeds.txt)
    file(STRINGS ${CMAKE_CURRENT_LIST_DIR}/regress/sim-seeds.txt _lines REGEX "^[a-z]")
    set(_i 0)
    foreach(l ${_lines})
        separate_arguments(_f UNIX_COMMAND "${l}")
        list(GET _f 0 _s)
        list(GET _f 1 _seed)
        list(GET _f 2 _faults)
        math(EXPR _i "${_i} + 1")
        set(_path ${_scn}/${_s}.scn)
        if(_s STREQUAL "default")
            set(_path "")
        endif()
        add_test(NAME sim_regress_${_i}_${_s}_${_seed}
            COMMAND ${_sim} sim ${_path} --seed ${_seed} --faults ${_faults} --check-determinism --quiet)
    endforeach()
endif()

set_tests_properties(sim_default_100_seeds sim_chaos_50_seeds sim_crash_50_seeds sim_shards
    sim_usage_errors sim_broken_scenario_reproduces PROPERTIES LABELS "unit;sim" TIMEOUT 300)
