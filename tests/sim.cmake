# sim.cmake — simulator tests: unit tests, seed sweeps with the determinism check, scenarios,
# the broken-scenario reproduction check, and the checked-in regression seeds and fuzz inputs.

orrery_add_test(test_sim SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sim.c
    LIBS orrery_sim_runner orrery_sim orrery_servers orrery_core orrery_hal_host LABELS sim)

# The scenario language for clusters: its directives, their errors, manifest substitution.
orrery_add_test(test_scenario SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_scenario.c
    LIBS orrery_sim_runner orrery_sim orrery_servers orrery_core orrery_hal_host LABELS sim)

# Cluster files run: per-node expectations, a crash and reboot, a pause, every disk's e2fsck.
orrery_add_test(test_scenario_run SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_scenario_run.c
    LIBS orrery_sim_runner orrery_sim orrery_servers orrery_lwip orrery_core orrery_hal_host
    LABELS sim)

orrery_add_test(test_sim_net SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sim_net.c
    LIBS orrery_sim orrery_servers orrery_core orrery_hal_host LABELS sim unit)

orrery_add_test(test_sim_nodes SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sim_nodes.c
    LIBS orrery_sim orrery_servers orrery_core orrery_hal_host LABELS sim unit)

orrery_add_test(test_sim_blk SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sim_blk.c
    LIBS orrery_sim orrery_servers orrery_core orrery_hal_host LABELS sim unit)

orrery_add_test(test_fsstress SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_fsstress.c
    LIBS orrery_sim orrery_servers orrery_core orrery_hal_host LABELS sim unit)

orrery_add_test(test_sim_tcp SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sim_tcp.c
    LIBS orrery_sim orrery_servers orrery_lwip orrery_core orrery_hal_host LABELS sim unit)

orrery_add_test(test_sim_streams SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sim_streams.c
    LIBS orrery_sim_runner orrery_sim orrery_servers orrery_lwip orrery_core orrery_hal_host
    LABELS sim unit)

set(_scn ${CMAKE_SOURCE_DIR}/scenarios)
set(_sim $<TARGET_FILE:orrery>)

# 100 seeds of the default scenario, each run twice and compared (the CI sweep).
add_test(NAME sim_default_100_seeds
    COMMAND ${_sim} sim --seeds 1..100 --check-determinism --quiet)
foreach(s chaos crash net power-cut)
    add_test(NAME sim_${s}_50_seeds
        COMMAND ${_sim} sim ${_scn}/${s}.scn --seeds 1..50 --check-determinism --quiet)
endforeach()
# Shards 0/2 and 1/2 together cover the range.
add_test(NAME sim_shards
    COMMAND sh -c "${_sim} sim --seeds 1..10 --shard 0/2 --quiet | grep -q '5 seed(s)' && ${_sim} sim --seeds 1..10 --shard 1/2 --quiet | grep -q '5 seed(s)'")
# A shard of the whole 2^64 range starts at once (its seeds are computed, not walked): with
# --count 3, shard 3/7 runs seeds 4, 11 and 18 (broken.scn fails every seed, so each is named).
add_test(NAME sim_shard_of_a_huge_range
    COMMAND sh -c "out=$(${_sim} sim ${_scn}/broken.scn --seeds 1..18446744073709551615 --shard 3/7 --count 3 --quiet); test $? -eq 1 || exit 1; printf '%s\\n' \"$out\"; test \"$(printf '%s\\n' \"$out\" | sed -n 's/^FAIL broken seed \\([0-9]*\\):.*/\\1/p' | tr '\\n' ' ')\" = '4 11 18 ' && printf '%s\\n' \"$out\" | grep -qF '3 seed(s) (1..18446744073709551615, shard 3/7)'")
# The top of the range: no overflow past 2^64 - 1, which is a seed like any other.
add_test(NAME sim_shard_at_the_top_of_the_range
    COMMAND sh -c "out=$(${_sim} sim ${_scn}/broken.scn --seeds 18446744073709551610..18446744073709551615 --shard 1/2 --quiet); test $? -eq 1 || exit 1; printf '%s\\n' \"$out\"; test \"$(printf '%s\\n' \"$out\" | sed -n 's/^FAIL broken seed \\([0-9]*\\):.*/\\1/p' | tr '\\n' ' ')\" = '18446744073709551611 18446744073709551613 18446744073709551615 '")
add_test(NAME sim_usage_errors
    COMMAND sh -c "for a in '--seeds 5..1' '--faults boom' '--shard 2/2' '--count 0' '--seeds 1..x' '--seed -1' '--seeds 1..18446744073709551616' '--shard 1' '--bogus' '--seed'; do ${_sim} sim $a 2>/dev/null; rc=$?; test $rc -eq 2 || { echo \"sim $a: exit $rc, want 2\"; exit 1; }; done; ${_sim} sim --seed=3 --count=1 --quiet | grep -qF '1 seed(s) (3..3)'")
# Scenario files: each limit is an error naming the file (and the line), exit 2.
add_test(NAME sim_scenario_limits
    COMMAND sh -c "d=${CMAKE_CURRENT_BINARY_DIR}/sim-limits; rm -rf $d; mkdir -p $d; head -c 1048577 /dev/zero | tr '\\0' '#' > $d/big.scn; ${_sim} sim $d/big.scn 2>$d/err; test $? -eq 2 && grep -qF \"$d/big.scn: larger than 1048576 bytes\" $d/err || exit 1; { echo 'name long'; printf 'at 1s echo '; head -c 2000 /dev/zero | tr '\\0' x; echo; } > $d/long.scn; ${_sim} sim $d/long.scn 2>$d/err; test $? -eq 2 && grep -qF \"$d/long.scn:2: line longer than 1088 bytes\" $d/err || exit 1; printf 'name x\\nkills 1001\\n' > $d/kills.scn; ${_sim} sim $d/kills.scn 2>$d/err; test $? -eq 2 && grep -qF \"$d/kills.scn:2: kills needs a number 0..1000\" $d/err || exit 1; ${_sim} sim $d/missing.scn 2>$d/err; test $? -eq 2 && grep -qF \"$d/missing.scn: No such file\" $d/err")

# Faults in tasks (crash.scn: a null store, a stack overflow, a panic, an assertion) kill the shell
# alone, in the simulator as in `orrery run`: every seed passes, twice with the same hash, and the
# console output of a seed is the same in two processes (no host address in fault messages).
add_test(NAME sim_task_faults
    COMMAND sh -c "out=$(${_sim} sim ${_scn}/crash.scn --seeds 1..20 --check-determinism --quiet); rc=$?; printf '%s\\n' \"$out\"; test $rc -eq 0 && printf '%s\\n' \"$out\" | grep -qF '20 seed(s) (1..20), 20 passed, 0 failed' && a=$(${_sim} sim ${_scn}/crash.scn --seed 7 --show-output | grep -v '^sim:') && b=$(${_sim} sim ${_scn}/crash.scn --seed 7 --show-output | grep -v '^sim:') && test -n \"$a\" && test \"$a\" = \"$b\" && printf '%s\\n' \"$a\" | grep -qF 'restarting (restart 4 of 10)'")
# The same under TSan (label tsan): a second fault on the same thread must not kill the process.
add_test(NAME sim_task_faults_tsan
    COMMAND ${_sim} sim ${_scn}/crash.scn --seeds 1..10 --check-determinism --quiet)

# A seed that kills the simulator itself (host-crash.scn aborts on seed 5; a copy faults outside
# any task instead) is a FAIL line with its reproduce command, the other seeds still run, and the
# reproduce command fails the same way.
file(READ ${_scn}/host-crash.scn _hc)
string(REPLACE "host-crash 5 abort" "host-crash 5 segv" _hc "${_hc}")
file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/host-crash-segv.scn "${_hc}")
foreach(how abort segv)
    set(_path ${_scn}/host-crash.scn)
    set(_why "was killed by signal 6")
    if(how STREQUAL "segv")
        set(_path ${CMAKE_CURRENT_BINARY_DIR}/host-crash-segv.scn)
        set(_why "(was killed by signal 11|exited with status 1 )") # 1: a sanitizer's report
    endif()
    add_test(NAME sim_host_crash_${how}_is_a_fail_line
        COMMAND sh -c "out=$(${_sim} sim ${_path} --seeds 1..10 --quiet 2>/dev/null); test $? -eq 1 || exit 1; printf '%s\\n' \"$out\"; fail=$(printf '%s\\n' \"$out\" | grep '^FAIL'); test \"$(printf '%s\\n' \"$fail\" | wc -l)\" -eq 1 && printf '%s\\n' \"$fail\" | grep -qE '^FAIL host-crash seed 5: the simulator ${_why}' && printf '%s\\n' \"$out\" | grep -qF '10 seed(s) (1..10), 9 passed, 1 failed' || exit 1; cmd=$(printf '%s\\n' \"$out\" | sed -n 's/^  reproduce: //p'); again=$($cmd --quiet 2>/dev/null); test $? -eq 1 && printf '%s\\n' \"$again\" | grep -qxF \"$fail\"")
    set_tests_properties(sim_host_crash_${how}_is_a_fail_line PROPERTIES LABELS "unit;sim"
        TIMEOUT 120)
endforeach()

# --keep-failing keeps what a seed that killed the simulator wrote before dying: its trace, one
# record a line (here the records of the boot before the crash), and its console output.
add_test(NAME sim_host_crash_keeps_the_trace_so_far
    COMMAND sh -c "d=${CMAKE_CURRENT_BINARY_DIR}/sim-keep-crash; rm -rf $d; ${_sim} sim ${_scn}/host-crash.scn --seed 5 --keep-failing $d --quiet; test $? -eq 1 && test -f $d/host-crash-seed-5.out && grep -q '^1 0 DEVICE task=0 ' $d/host-crash-seed-5.trace.txt && grep -q '^2 0 SPAWN task=1 ' $d/host-crash-seed-5.trace.txt")
set_tests_properties(sim_host_crash_keeps_the_trace_so_far PROPERTIES LABELS "unit;sim" TIMEOUT 60)

# --no-fork: the seeds run in orrery sim itself; task faults are still the task's, but a crash of
# the simulator is the process's (for a debugger): seed 5 of host-crash.scn aborts it.
add_test(NAME sim_no_fork
    COMMAND sh -c "${_sim} sim ${_scn}/crash.scn --seeds 1..5 --no-fork --quiet | grep -qF '5 passed, 0 failed' || exit 1; ${_sim} sim ${_scn}/host-crash.scn --seeds 1..10 --no-fork --quiet 2>/dev/null; rc=$?; test $rc -gt 128 || { echo \"exit $rc, want death by a signal\"; exit 1; }")
set_tests_properties(sim_no_fork PROPERTIES LABELS "unit;sim" TIMEOUT 60)

# The child running the seeds dies with `orrery sim` (a CI job's timeout kills the sweep, not
# the whole process group): it must not run on alone.
add_test(NAME sim_child_dies_with_the_sweep
    COMMAND sh -c "${_sim} sim --seeds 1..18446744073709551615 --quiet & p=$!; c=; for i in $(seq 100); do c=$(pgrep -P $p) && break; sleep 0.05; done; test -n \"$c\" || { kill $p; echo 'no child'; exit 1; }; kill -TERM $p; wait $p; for i in $(seq 100); do s=$(ps -o stat= -p $c) || exit 0; case $s in Z*) exit 0;; esac; sleep 0.05; done; kill -KILL $c; echo 'the child outlived the sweep'; exit 1")
set_tests_properties(sim_child_dies_with_the_sweep PROPERTIES LABELS "unit;sim" TIMEOUT 60)

# A deliberately broken scenario fails (exit 1), and its printed reproduction command fails the
# same way (the exact FAIL line comes back).
add_test(NAME sim_broken_scenario_reproduces
    COMMAND sh -c "out=$(${_sim} sim ${_scn}/broken.scn --seeds 3..5 --quiet); test $? -eq 1 || exit 1; cmd=$(printf '%s\\n' \"$out\" | sed -n 's/^  reproduce: //p' | head -n 1); fail=$(printf '%s\\n' \"$out\" | grep '^FAIL' | head -n 1); test -n \"$cmd\" || exit 1; again=$($cmd --quiet); test $? -eq 1 || exit 1; printf '%s\\n' \"$again\" | grep -qxF \"$fail\" && echo \"reproduced: $fail\"")

# The workloads of docs/kv.md on clusters. cluster-http.scn (httpd, the echo service, fetches
# and a checked stream across a lossy network and a healing partition): 100 seeds, each run
# twice and compared. kv.scn (the replicated store under crashes and partitions): 100 seeds, no
# acknowledged write lost (once each: four nodes with lwIP cost about a second of wall time a
# seed). kv-broken.scn (followers acknowledging before their fsync, three power losses of the
# whole store): some seed of 1..100 loses an acknowledged write, every FAIL line is kvclient's
# panic, and the first one's reproduce command fails with the same line.
add_test(NAME sim_cluster-http_100_seeds
    COMMAND ${_sim} sim ${_scn}/cluster-http.scn --seeds 1..100 --check-determinism --quiet)
add_test(NAME sim_kv_100_seeds
    COMMAND ${_sim} sim ${_scn}/kv.scn --seeds 1..100 --quiet)
add_test(NAME sim_kv_broken_loses_a_write
    COMMAND sh -c "out=$(${_sim} sim ${_scn}/kv-broken.scn --seeds 1..100 --quiet); test $? -eq 1 || exit 1; printf '%s\\n' \"$out\" | grep '^FAIL' | grep -v 'node client: panic that was not injected: kvclient exited with -128' && exit 1; fail=$(printf '%s\\n' \"$out\" | grep '^FAIL' | head -n 1); cmd=$(printf '%s\\n' \"$out\" | sed -n 's/^  reproduce: //p' | head -n 1); test -n \"$cmd\" || exit 1; again=$($cmd --show-output 2>/dev/null); test $? -eq 1 || exit 1; printf '%s\\n' \"$again\" | grep -qxF \"$fail\" && printf '%s\\n' \"$again\" | grep -q '^\\[kvclient\\] kvcheck: LOST key=k[0-9]* acked value=[0-9]*:[a-z]* got=' && echo \"reproduced: $fail\"")
set_tests_properties(sim_cluster-http_100_seeds sim_kv_100_seeds sim_kv_broken_loses_a_write
    PROPERTIES LABELS "sim" TIMEOUT 300)
# A few seeds of each in the unit label too, so the sanitizer builds run the cluster workloads
# (kv, kvclient, tcpstream, httpd and fs on several nodes, crashes, partitions).
add_test(NAME sim_kv_cluster_few_seeds
    COMMAND sh -c "${_sim} sim ${_scn}/kv.scn --seeds 1..4 --quiet && ${_sim} sim ${_scn}/cluster-http.scn --seeds 1..4 --quiet")
set_tests_properties(sim_kv_cluster_few_seeds PROPERTIES LABELS "unit;sim" TIMEOUT 300)

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
    sim_power-cut_50_seeds
    sim_usage_errors sim_broken_scenario_reproduces sim_task_faults sim_scenario_limits
    PROPERTIES LABELS "unit;sim" TIMEOUT 300)
# A huge range that were walked seed by seed would never start: the timeout fails it.
set_tests_properties(sim_shard_of_a_huge_range sim_shard_at_the_top_of_the_range PROPERTIES
    LABELS "unit;sim" TIMEOUT 60)
set_tests_properties(sim_task_faults_tsan PROPERTIES LABELS "sim;tsan" TIMEOUT 300)

# The network scenario's frames: the same seed gives the same pcap, byte for byte, which tcpdump
# reads (ICMP echo between the two nodes, the refused SYN's RST); another seed another file.
add_test(NAME sim_net_pcap
    COMMAND sh -c "d=$(mktemp -d) && trap 'rm -rf $d' EXIT && ${_sim} sim ${_scn}/net.scn --seed 4 --pcap $d/a.pcap --quiet >/dev/null && ${_sim} sim ${_scn}/net.scn --seed 4 --pcap $d/b.pcap --quiet >/dev/null && ${_sim} sim ${_scn}/net.scn --seed 5 --pcap $d/c.pcap --quiet >/dev/null && cmp $d/a.pcap $d/b.pcap && ! cmp -s $d/a.pcap $d/c.pcap && if command -v tcpdump >/dev/null; then tcpdump -nn -r $d/a.pcap 2>/dev/null > $d/a.txt && grep -q 'ICMP echo request' $d/a.txt && grep -q 'ICMP echo reply' $d/a.txt && grep -q '10.0.0.2.80 > 10.0.0.1.[0-9]*: Flags \\[R' $d/a.txt; elif [ -n \"$CI\" ]; then echo 'tcpdump missing'; exit 1; fi")
set_tests_properties(sim_net_pcap PROPERTIES LABELS sim)
# The fs server on a simulated disk (an image made by mke2fs): a full request queue, failed writes.
orrery_add_test(test_fs_server_sim SOURCES test_fs_server_sim.c fs_client.c
    LIBS orrery_sim orrery_servers orrery_core orrery_hal_host LABELS sim)

# The file system under power cuts (docs/storage-sim.md). scripts/fs-check runs fs.scn's 200
# seeds in shards, then per seed: e2fsck -fy must repair the disk the cut left (exit 0 or 1),
# a second e2fsck -fn must be clean, and every file fsstress said it fsync'ed (and did not
# supersede) must hold its bytes, its ledger whole. fs-clean.scn's disks must be clean as they
# are after a clean shutdown. fs-reboot.scn boots again after the cut and fsstress checks its
# ledger itself, then fs-check the disk it leaves (and its bytes are part of the determinism
# check). fs-faults.scn: a disk that fails, tears and loses requests gets errors reported,
# never a crash or a hang.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
set(_fscheck ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/scripts/fs-check --orrery ${_sim})
add_test(NAME sim_fs_200_seeds COMMAND ${_fscheck} --scenario ${_scn}/fs.scn --seeds 1..200)
add_test(NAME sim_fs_clean_50_seeds
    COMMAND ${_fscheck} --scenario ${_scn}/fs-clean.scn --clean --seeds 1..50)
add_test(NAME sim_fs-reboot_50_seeds
    COMMAND ${_fscheck} --scenario ${_scn}/fs-reboot.scn --seeds 1..50 --check-determinism)
add_test(NAME sim_fs-faults_50_seeds
    COMMAND sh -c "out=$(${_sim} sim ${_scn}/fs-faults.scn --seeds 1..50 --check-determinism --show-output); rc=$?; printf '%s\\n' \"$out\" | grep -A1 '^FAIL'; test $rc -eq 0 || exit 1; printf '%s\\n' \"$out\" | grep -q '^\\[fsstress\\] error ' || { echo 'no error reached fsstress in 50 seeds'; exit 1; }; printf '%s\\n' \"$out\" | grep -qE '^blk: .* eio [1-9]' || { echo 'no blk-eio in 50 seeds'; exit 1; }")
set_tests_properties(sim_fs_clean_50_seeds sim_fs-reboot_50_seeds sim_fs-faults_50_seeds
    PROPERTIES LABELS "unit;sim" TIMEOUT 300)
# The check has teeth: on a disk that acknowledges writes and loses 1% of them (blk-lost),
# fs-check finds fsync'ed data lost in some of 20 seeds, names the seed and fails.
add_test(NAME sim_fs_check_finds_lost_writes
    COMMAND sh -c "out=$(${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/scripts/fs-check --orrery ${_sim} --scenario ${_scn}/fs.scn --seeds 1..20 --faults blk-lost 2>&1); rc=$?; printf '%s\\n' \"$out\" | tail -n 1; test $rc -eq 1 && printf '%s\\n' \"$out\" | grep -qE '^FAIL fs seed [0-9]+: fsynced data lost:' && printf '%s\\n' \"$out\" | grep -qE '^  reproduce: .* --seed [0-9]+ --faults blk-lost --save-disk '")
set_tests_properties(sim_fs_check_finds_lost_writes PROPERTIES LABELS "unit;sim" TIMEOUT 300)
# Not under the sanitizers (label unit): the 50-seed runs above cover the same code there.
set_tests_properties(sim_fs_200_seeds PROPERTIES LABELS "sim" TIMEOUT 300)

# httpd on a server node with a disk made from disk/ (peer-disk ... from=), fetched by the
# scenario's shell across a lossy network, killed twice at set times (kill-at) and restarted by
# init: 30 seeds, each run twice and compared (docs/httpd.md).
add_test(NAME sim_http_30_seeds
    COMMAND ${_sim} sim ${_scn}/http.scn --seeds 1..30 --check-determinism --quiet)
set_tests_properties(sim_http_30_seeds PROPERTIES LABELS "unit;sim" TIMEOUT 300)
# kill-at and peer-disk: a kill that finds no live task, or that the run ends before, fails the
# seed naming the line; a peer-disk of an undeclared peer, or from a missing folder, is a usage
# error naming the file and line.
add_test(NAME sim_kill_at_and_peer_disk
    COMMAND sh -c "d=${CMAKE_CURRENT_BINARY_DIR}/sim-killat; rm -rf $d; mkdir -p $d; cp ${_scn}/net/server.manifest $d/s.manifest; \
printf 'name k\\npeer s manifest=s.manifest\\nkill-at 1s s:echo\\nat 2s shutdown\\n' > $d/a.scn; out=$(${_sim} sim $d/a.scn --seed 1 --quiet); test $? -eq 1 && printf '%s\\n' \"$out\" | grep -qF 'kill-at (scenario line 3): no live task of s:echo at 1000 ms' || exit 1; \
printf 'name k\\npeer s manifest=s.manifest\\nkill-at 9s s:tcpecho\\nat 2s shutdown\\n' > $d/b.scn; out=$(${_sim} sim $d/b.scn --seed 1 --quiet); test $? -eq 1 && printf '%s\\n' \"$out\" | grep -qF 'kill-at (scenario line 3): the run ended before killing s:tcpecho' || exit 1; \
printf 'name k\\npeer s manifest=s.manifest\\nkill-at 1s s:tcpecho\\nat 2s shutdown\\n' > $d/c.scn; ${_sim} sim $d/c.scn --seed 1 --quiet | grep -qF '1 passed' || exit 1; \
printf 'name k\\npeer-disk s zero size=1M\\n' > $d/e.scn; ${_sim} sim $d/e.scn 2>$d/err; test $? -eq 2 && grep -qF \"$d/e.scn:2: peer-disk needs a peer declared above, not 's'\" $d/err || exit 1; \
printf 'name k\\npeer s manifest=s.manifest\\npeer-disk s ext2 size=1M from=nowhere\\n' > $d/f.scn; ${_sim} sim $d/f.scn 2>$d/err; test $? -eq 2 && grep -qF 'from=' $d/err && grep -qF 'nowhere: No such file' $d/err || exit 1; \
printf 'name k\\npeer s manifest=s.manifest\\nkill-at 1s q:tcpecho\\n' > $d/g.scn; ${_sim} sim $d/g.scn 2>$d/err; test $? -eq 2 && grep -qF \"$d/g.scn:3: kill-at needs a peer declared above, not 'q'\" $d/err")
set_tests_properties(sim_kill_at_and_peer_disk PROPERTIES LABELS "unit;sim" TIMEOUT 60)
# The shell's fetch -r N (retries; the http scenario exercises them): its argument errors.
add_test(NAME shell_fetch_retry_usage
    COMMAND sh -c "out=$(printf 'fetch -r 11 http://x/\\nfetch -r x http://x/\\nfetch -r 2\\nshutdown\\n' | ${_sim} run --deterministic 2>&1); printf '%s\\n' \"$out\"; printf '%s\\n' \"$out\" | grep -qF \"shell: fetch: -r needs a number of retries 0..10, not '11'\" && printf '%s\\n' \"$out\" | grep -qF \"shell: fetch: -r needs a number of retries 0..10, not 'x'\" && printf '%s\\n' \"$out\" | grep -qF 'shell: usage: fetch http://HOST[:PORT]/PATH'")
set_tests_properties(shell_fetch_retry_usage PROPERTIES LABELS "unit;sim" TIMEOUT 60)

# Clusters (docs/simulation.md "Clusters: nodes, links, faults"): scenarios/cluster.scn, three
# nodes from one template that ping each other through a crash and a partition, over 20 seeds
# each run twice (every node's records, every frame, the same).
add_test(NAME sim_cluster_20_seeds
    COMMAND ${_sim} sim ${_scn}/cluster.scn --seeds 1..20 --check-determinism --quiet)
set_tests_properties(sim_cluster_20_seeds PROPERTIES LABELS "unit;sim" TIMEOUT 120)
# A cluster file that fails (an expectation on n2 no run meets) keeps one trace naming the three
# nodes, and per node its console output, its frames and its disk; its reproduce command fails
# the same way; --save-disks keeps every node's disk and console output; every node's tcpip,
# tcpecho and shell replay from the kept trace (n3's first life: it crashed and booted again).
file(READ ${_scn}/cluster.scn _cl)
string(REPLACE "manifest=cluster/node.manifest addr=10.0.0.{i}/24"
    "manifest=${_scn}/cluster/node.manifest addr=10.0.0.{i}/24 disk=zero:64K" _cl "${_cl}")
string(REPLACE "name cluster" "name cluster-broken" _cl "${_cl}")
file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/cluster-broken.scn "${_cl}expect n2 never printed\n")
add_test(NAME sim_cluster_keep_failing
    COMMAND sh -c "d=${CMAKE_CURRENT_BINARY_DIR}/sim-keep-cluster; rm -rf $d; out=$(${_sim} sim ${CMAKE_CURRENT_BINARY_DIR}/cluster-broken.scn --seed 3 --keep-failing $d --quiet 2>/dev/null); test $? -eq 1 || exit 1; printf '%s\\n' \"$out\"; fail=$(printf '%s\\n' \"$out\" | grep '^FAIL'); printf '%s\\n' \"$fail\" | grep -qF \"FAIL cluster-broken seed 3: node n2: expectation (scenario line 39): output has no 'never printed'\" || exit 1; for n in n1 n2 n3; do for e in out pcap img; do test -s $d/cluster-broken-seed-3.$n.$e || { echo \"missing $n.$e\"; exit 1; }; done; done; grep -qF 'PING 10.0.0.2' $d/cluster-broken-seed-3.n1.out && grep -qF '[tcpip] net0 10.0.0.2/24' $d/cluster-broken-seed-3.n2.out && ${_sim} trace summary $d/cluster-broken-seed-3.trace | grep -qF 'nodes: 3 (n1, n2, n3)' || exit 1; cmd=$(printf '%s\\n' \"$out\" | sed -n 's/^  reproduce: //p'); again=$($cmd --quiet 2>/dev/null); test $? -eq 1 && printf '%s\\n' \"$again\" | grep -qxF \"$fail\" || exit 1; ${_sim} sim ${CMAKE_CURRENT_BINARY_DIR}/cluster-broken.scn --seed 3 --save-disks $d/s --quiet >/dev/null; for n in n1 n2 n3; do test -s $d/s/cluster-broken-seed-3.$n.img && test -s $d/s/cluster-broken-seed-3.$n.out || exit 1; done; t=$d/cluster-broken-seed-3.trace; ${_sim} replay $t --task tcpip 2>&1 | grep -qF 'the trace holds 3 nodes (n1, n2, n3)' || exit 1; for n in n1 n2 n3; do for p in tcpip tcpecho shell; do ${_sim} replay $t --task $p --node $n | grep -q ' events matched' || { echo replay-failed-$p-$n; exit 1; }; done; done")
set_tests_properties(sim_cluster_keep_failing PROPERTIES LABELS "unit;sim" TIMEOUT 120)
# Errors in cluster files name the file and the line, exit 2: a node nobody declared, a
# manifest whose ${...} cannot be filled.
add_test(NAME sim_cluster_file_errors
    COMMAND sh -c "d=${CMAKE_CURRENT_BINARY_DIR}/sim-cluster-errors; rm -rf $d; mkdir -p $d; printf 'node a\\nat 1s b ps\\n' > $d/who.scn; ${_sim} sim $d/who.scn 2>$d/err; test $? -eq 2 && grep -qF \"$d/who.scn:2: at needs TIME NODE COMMAND with a node declared above, not 'b'\" $d/err || exit 1; printf 'program tcpip arg=addr=\${cidr}\\n' > $d/m.manifest; printf 'node a\\nnode b manifest=m.manifest\\n' > $d/subst.scn; ${_sim} sim $d/subst.scn 2>$d/err; test $? -eq 2 && grep -qF \"$d/subst.scn:2: node b: manifest m.manifest: \\\${cidr}: node b has no addr=\" $d/err")
set_tests_properties(sim_cluster_file_errors PROPERTIES LABELS "unit;sim" TIMEOUT 60)

# Policy edges (docs/simulation.md, "Policy edges"): each scenario drives one policy or limit past
# its edge, every seed run twice and compared. edge-restart and edge-zero: init's restart
# policy past max-restarts (0, 1, 2; always, on-failure, never; clean exits and failures; a
# `spawn` after init gave up; status 121 once every program ended for good; the shell given up
# on, then status 120 at the end of input), judged by their
# expectations and the runner's restart-policy invariant; edge-queue: echo's queue filled to
# OS_CHAN_QUEUE_MAX (the queue-bound invariant); edge-handles: a task at OS_HANDLES_MAX, then
# sound; edge-conns: tcpip's TCPIP_CONNS_MAX; edge-httpd: httpd's 64 connections (503).
# restart and queue also run under ASan+UBSan (label unit); the other three in the plain build.
foreach(s restart zero shell queue handles)
    add_test(NAME sim_edge-${s}_100_seeds
        COMMAND ${_sim} sim ${_scn}/edge-${s}.scn --seeds 1..100 --check-determinism --quiet)
    set(_labels "sim")
    if(s STREQUAL "restart" OR s STREQUAL "queue")
        set(_labels "unit;sim")
    endif()
    set_tests_properties(sim_edge-${s}_100_seeds PROPERTIES LABELS "${_labels}" TIMEOUT 300)
endforeach()
foreach(s conns httpd)
    add_test(NAME sim_edge-${s}_30_seeds
        COMMAND ${_sim} sim ${_scn}/edge-${s}.scn --seeds 1..30 --check-determinism --quiet)
    set_tests_properties(sim_edge-${s}_30_seeds PROPERTIES LABELS "sim" TIMEOUT 300)
endforeach()
# The same 100 connections all at once: every seed passes, and on some seed of 20 the server's
# tcpip resets connections past its listener's backlog (edge counts them closed by the server).
add_test(NAME sim_edge-conns-burst_20_seeds
    COMMAND sh -c "out=$(${_sim} sim ${_scn}/edge-conns-burst.scn --seeds 1..20 --show-output); rc=$?; printf '%s\\n' \"$out\" | grep -A1 '^FAIL'; test $rc -eq 0 || exit 1; printf '%s\\n' \"$out\" | grep -qE '^\\[edge\\] conns: .* [1-9][0-9]* closed by the server' || { echo 'no connection past the backlog in 20 seeds'; exit 1; }")
set_tests_properties(sim_edge-conns-burst_20_seeds PROPERTIES LABELS "sim" TIMEOUT 300)
# A task that keeps its handle table full fails the handle-leak check on every seed, naming it,
# and the printed reproduce command fails with the same line.
add_test(NAME sim_edge_handles_leak_is_caught
    COMMAND sh -c "out=$(${_sim} sim ${_scn}/edge-handles-leak.scn --seeds 1..10 --quiet); test $? -eq 1 || exit 1; printf '%s\\n' \"$out\" | grep '^FAIL' | grep -v 'handle leak: edge (task 5) holds 256 handles (limit 64)$' && exit 1; printf '%s\\n' \"$out\" | grep -qF '10 seed(s) (1..10), 0 passed, 10 failed' || exit 1; fail=$(printf '%s\\n' \"$out\" | grep '^FAIL' | head -n 1); cmd=$(printf '%s\\n' \"$out\" | sed -n 's/^  reproduce: //p' | head -n 1); again=$($cmd --quiet); test $? -eq 1 && printf '%s\\n' \"$again\" | grep -qxF \"$fail\"")
set_tests_properties(sim_edge_handles_leak_is_caught PROPERTIES LABELS "unit;sim" TIMEOUT 120)
# The shell's file commands on a volume, as typed (shell-fs.scn): their output is the check.
add_test(NAME sim_shell_fs_5_seeds
    COMMAND ${_sim} sim ${_scn}/shell-fs.scn --seeds 1..5 --check-determinism --quiet)
set_tests_properties(sim_shell_fs_5_seeds PROPERTIES LABELS "sim" TIMEOUT 300)
# The echo service as a client on another node sees it: TCP and UDP echo, and its words when
# the manifest gives it only tcp, or neither.
orrery_add_test(test_tcpecho_sim SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_tcpecho_sim.c
    LIBS orrery_sim orrery_servers orrery_lwip orrery_core orrery_hal_host LABELS sim)
# kv-restart.scn (docs/kv.md): one follower off for the whole run, the leader's kv killed ten
# times: every restart recovers and serves with a majority of two, no acknowledged write lost.
add_test(NAME sim_kv_restart_20_seeds
    COMMAND ${_sim} sim ${_scn}/kv-restart.scn --seeds 1..20 --quiet)
set_tests_properties(sim_kv_restart_20_seeds PROPERTIES LABELS "sim" TIMEOUT 300)
