#!/usr/bin/env bash
# Sums the per-test seconds of a ctest log: the tests that run alone (RUN_SERIAL, PROCESSORS 2) and the rest.
serial='^(e2e_(cluster_failover|cluster_formation|http_plain|security_manager_http_limits|security_hole6_health_starvation|security_hole7_tcp_limits|security_hole7_shared_events|dashboard_browser|dashboard_history_browser|manager_cluster|auth_flood)(_tls)?|sim_(safety|liveness)_[35]|faults_short|installer_package)$'
grep -E "Test +#" "$1" | awk -v re="$serial" '{n=$4; t=0; for(i=1;i<=NF;i++) if($i=="sec") t=$(i-1); if(n ~ re) s+=t; else p+=t; if(n~/^e2e_/) e+=t} END{printf "alone %.0f s, side by side %.0f s (e2e total %.0f s)\n", s, p, e}'
grep "Total Test time" "$1"
