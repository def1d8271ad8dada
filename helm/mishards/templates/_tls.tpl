{{/* TLS wiring ------------------------------------------------------------------------------------------
Cluster mTLS (proxies <-> nodes): one certificate for every node and proxy pod, valid for server and client auth,
signed by the cluster CA. It comes from tls.cluster.existingSecret, or a cert-manager Certificate, or (neither) a
CA and certificate the chart generates once and keeps across upgrades. Whatever the source, the Secret holds
ca.crt, tls.crt and tls.key and is mounted whole (no subPath), so a renewed Secret reaches the files in place.
Edge TLS (clients -> proxy) is opt-in and mounted into the proxy pods only.
*/}}

{{- define "mishards.tlsDir" -}}/etc/mishards-tls{{- end -}}

{{- define "mishards.clusterTls.enabled" -}}
{{- if .Values.tls.cluster.enabled -}}true{{- end -}}
{{- end -}}

{{- define "mishards.clusterTls.secretName" -}}
{{- .Values.tls.cluster.existingSecret | default (printf "%s-cluster-tls" (include "mishards.fullname" .)) -}}
{{- end -}}

{{/* Which source issues the cluster certificate: existing, cert-manager or generated. */}}
{{- define "mishards.clusterTls.source" -}}
{{- $c := .Values.tls.cluster -}}
{{- if and $c.existingSecret $c.certManager.enabled -}}
{{- fail "tls.cluster: set existingSecret or certManager.enabled, not both" -}}
{{- else if $c.existingSecret -}}existing
{{- else if $c.certManager.enabled -}}
{{- if not $c.certManager.issuerRef.name -}}
{{- fail "tls.cluster.certManager.enabled needs tls.cluster.certManager.issuerRef.name (an Issuer or ClusterIssuer that fills ca.crt, e.g. a CA issuer)" -}}
{{- end -}}cert-manager
{{- else -}}generated
{{- end -}}
{{- end -}}

{{/*
The names the cluster certificate carries: the fixed name dialers check (the processes verify the chain to the
cluster CA and the name mishards-cluster, since nodes are dialled at their pod IPs), and the Services' names.
*/}}
{{- define "mishards.clusterTls.dnsNames" -}}
{{- $fullname := include "mishards.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- $names := list "mishards-cluster" -}}
{{- range $service := list (printf "%s-nodes" $fullname) $fullname (printf "%s-proxy-metrics" $fullname) -}}
{{- $names = concat $names (list $service (printf "%s.%s" $service $ns) (printf "%s.%s.svc" $service $ns) (printf "*.%s.%s.svc" $service $ns) (printf "*.%s.%s.svc.cluster.local" $service $ns)) -}}
{{- end -}}
{{- toJson $names -}}
{{- end -}}

{{/* Command-line flags of a node or proxy container for cluster mTLS. */}}
{{- define "mishards.clusterTls.args" -}}
{{- if include "mishards.clusterTls.enabled" . }}
- --cluster-tls-cert
- {{ include "mishards.tlsDir" . }}/cluster/tls.crt
- --cluster-tls-key
- {{ include "mishards.tlsDir" . }}/cluster/tls.key
- --cluster-tls-ca
- {{ include "mishards.tlsDir" . }}/cluster/ca.crt
- --cluster-tls-server-name
- mishards-cluster
{{- end }}
{{- end -}}

{{/* Edge TLS flags of the proxy container. */}}
{{- define "mishards.edgeTls.args" -}}
{{- if .Values.tls.edge.enabled }}
- --tls-cert
- {{ include "mishards.tlsDir" . }}/edge/tls.crt
- --tls-key
- {{ include "mishards.tlsDir" . }}/edge/tls.key
{{- if .Values.tls.edge.clientCA.existingSecret }}
- --tls-client-ca
- {{ include "mishards.tlsDir" . }}/client-ca/ca.crt
{{- end }}
{{- end }}
{{- end -}}

{{- define "mishards.edgeTls.secretName" -}}
{{- $e := .Values.tls.edge -}}
{{- if and $e.existingSecret $e.certManager.enabled -}}
{{- fail "tls.edge: set existingSecret or certManager.enabled, not both" -}}
{{- else if $e.existingSecret -}}
{{- $e.existingSecret -}}
{{- else if $e.certManager.enabled -}}
{{- if not $e.certManager.issuerRef.name -}}
{{- fail "tls.edge.certManager.enabled needs tls.edge.certManager.issuerRef.name" -}}
{{- end -}}
{{- printf "%s-edge-tls" (include "mishards.fullname" .) -}}
{{- else -}}
{{- fail "tls.edge.enabled needs tls.edge.existingSecret (keys tls.crt, tls.key) or tls.edge.certManager.enabled" -}}
{{- end -}}
{{- end -}}

{{/* volumeMounts entries for a container; .edge: also the edge certificate (the proxy). */}}
{{- define "mishards.tls.volumeMounts" -}}
{{- $root := .root -}}
{{- if include "mishards.clusterTls.enabled" $root }}
- name: cluster-tls
  mountPath: {{ include "mishards.tlsDir" $root }}/cluster
  readOnly: true
{{- end }}
{{- if include "mishards.externalTls.catalog" $root }}
- name: catalog-tls
  mountPath: {{ include "mishards.tlsDir" $root }}/catalog
  readOnly: true
{{- end }}
{{- if include "mishards.externalTls.etcd" $root }}
- name: etcd-tls
  mountPath: {{ include "mishards.tlsDir" $root }}/etcd
  readOnly: true
{{- end }}
{{- if and .edge $root.Values.tls.edge.enabled }}
- name: edge-tls
  mountPath: {{ include "mishards.tlsDir" $root }}/edge
  readOnly: true
{{- if $root.Values.tls.edge.clientCA.existingSecret }}
- name: client-ca
  mountPath: {{ include "mishards.tlsDir" $root }}/client-ca
  readOnly: true
{{- end }}
{{- end }}
{{- end -}}

{{/* volumes entries of a pod, matching mishards.tls.volumeMounts. Mode 0440 (288): owner and fsGroup read. */}}
{{- define "mishards.tls.volumes" -}}
{{- $root := .root -}}
{{- if include "mishards.clusterTls.enabled" $root }}
- name: cluster-tls
  secret:
    secretName: {{ include "mishards.clusterTls.secretName" $root }}
    defaultMode: 288
    items:
      - key: ca.crt
        path: ca.crt
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
{{- end }}
{{- with (include "mishards.externalTls.catalog" $root) }}
- name: catalog-tls
  secret:
    secretName: {{ $root.Values.mysql.external.tlsSecret }}
    defaultMode: 288
    items:
      - key: ca.crt
        path: ca.crt
{{- end }}
{{- if include "mishards.externalTls.etcd" $root }}
- name: etcd-tls
  secret:
    secretName: {{ $root.Values.etcd.external.tls.existingSecret }}
    defaultMode: 288
    items:
      - key: ca.crt
        path: ca.crt
      {{- if $root.Values.etcd.external.tls.clientCert }}
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
      {{- end }}
{{- end }}
{{- if and .edge $root.Values.tls.edge.enabled }}
- name: edge-tls
  secret:
    secretName: {{ include "mishards.edgeTls.secretName" $root }}
    defaultMode: 288
    items:
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
{{- with $root.Values.tls.edge.clientCA.existingSecret }}
- name: client-ca
  secret:
    secretName: {{ . }}
    defaultMode: 288
    items:
      - key: {{ $root.Values.tls.edge.clientCA.key }}
        path: ca.crt
{{- end }}
{{- end }}
{{- end -}}

{{/* Auth flags shared by nodes and proxies: only what differs from the processes' defaults. */}}
{{- define "mishards.auth.args" -}}
{{- if ne .Values.auth.allowAnonymous "readwrite" }}
- --allow-anonymous
- {{ .Values.auth.allowAnonymous }}
{{- end }}
{{- end -}}

{{/*
TLS of the MariaDB and etcd this release deploys: on with cluster TLS and tls.databases.enabled, when the chart
deploys either. Their certificate is signed by the cluster CA; nodes and proxies verify it, and etcd also asks
them for the cluster certificate.
*/}}
{{- define "mishards.databasesTls.enabled" -}}
{{- $v := .Values -}}
{{- if and $v.tls.cluster.enabled $v.tls.databases.enabled (or $v.mysql.deploy (and (eq $v.membership.type "etcd") $v.etcd.deploy)) -}}
{{- if and $v.tls.cluster.existingSecret (not $v.tls.databases.existingSecret) -}}
{{- fail "tls.cluster.existingSecret needs tls.databases.existingSecret (tls.crt, tls.key for the MariaDB and etcd of this release, signed by the same CA), or tls.databases.enabled=false" -}}
{{- end -}}
true
{{- end -}}
{{- end -}}

{{- define "mishards.databasesTls.secretName" -}}
{{- .Values.tls.databases.existingSecret | default (printf "%s-databases-tls" (include "mishards.fullname" .)) -}}
{{- end -}}

{{- define "mishards.databasesTls.dnsNames" -}}
{{- $fullname := include "mishards.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- $names := list -}}
{{- range $service := list (printf "%s-mariadb" $fullname) (printf "%s-etcd" $fullname) -}}
{{- $names = concat $names (list $service (printf "%s.%s" $service $ns) (printf "%s.%s.svc" $service $ns) (printf "%s.%s.svc.cluster.local" $service $ns)) -}}
{{- end -}}
{{- toJson $names -}}
{{- end -}}

{{/* The volume of a database pod holding its certificate (and the cluster CA). */}}
{{- define "mishards.databasesTls.volume" -}}
- name: tls
  secret:
    secretName: {{ include "mishards.databasesTls.secretName" . }}
    defaultMode: 288
    items:
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
      - key: ca.crt
        path: ca.crt
{{- end -}}

{{/* The CA file that makes the catalog URI verify the chart's MariaDB or an external one (PyMySQL via SQLAlchemy). */}}
{{- define "mishards.databasesTls.catalogCa" -}}
{{- if and .Values.mysql.deploy (include "mishards.databasesTls.enabled" .) -}}
{{ include "mishards.tlsDir" . }}/cluster/ca.crt
{{- else if include "mishards.externalTls.catalog" . -}}
{{ include "mishards.tlsDir" . }}/catalog/ca.crt
{{- end -}}
{{- end -}}

{{/*
Query parameters of the etcd membership URI: for the chart's etcd its CA and the cluster certificate; for an
external etcd with etcd.external.tls.existingSecret, that Secret's CA (and client certificate).
*/}}
{{- define "mishards.databasesTls.etcdQuery" -}}
{{- $t := .Values.etcd.external.tls -}}
{{- if eq .Values.membership.type "etcd" -}}
{{- if and .Values.etcd.deploy (include "mishards.databasesTls.enabled" .) -}}
{{- $dir := printf "%s/cluster" (include "mishards.tlsDir" .) -}}
?tls_ca={{ $dir }}/ca.crt&tls_cert={{ $dir }}/tls.crt&tls_key={{ $dir }}/tls.key
{{- else if and (not .Values.etcd.deploy) $t.existingSecret -}}
{{- $dir := printf "%s/etcd" (include "mishards.tlsDir" .) -}}
?tls_ca={{ $dir }}/ca.crt
{{- if $t.clientCert }}&tls_cert={{ $dir }}/tls.crt&tls_key={{ $dir }}/tls.key{{ end -}}
{{- with $t.serverName }}&tls_server_name={{ . }}{{ end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "mishards.externalTls.etcd" -}}
{{- if and (eq .Values.membership.type "etcd") (not .Values.etcd.deploy) .Values.etcd.external.tls.existingSecret -}}true{{- end -}}
{{- end -}}

{{- define "mishards.externalTls.catalog" -}}
{{- if and (not .Values.mysql.deploy) .Values.mysql.external.tlsSecret -}}true{{- end -}}
{{- end -}}
