{{/* NetworkPolicy pieces ------------------------------------------------------------------------------ */}}

{{/* Peers: the proxy pods and the node pods (writer, standby, readers) of this release. */}}
{{- define "mishards.np.proxyPeer" -}}
- podSelector:
    matchLabels:
      {{- include "mishards.selectorLabels" (dict "root" . "component" "proxy") | nindent 6 }}
{{- end -}}

{{- define "mishards.np.nodeLabels" -}}
app.kubernetes.io/name: {{ include "mishards.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
mishards.io/node: "true"
{{- end -}}

{{- define "mishards.np.nodePeer" -}}
- podSelector:
    matchLabels:
      {{- include "mishards.np.nodeLabels" . | nindent 6 }}
{{- end -}}

{{/*
The node ports the proxies dial: the gRPC port; with several worker processes per reader (readers.workers not 1)
also each worker's own port (the proxy spreads searches over them): readers.workerPorts onwards, one per worker,
256 when the count is decided in the pod (workers 0).
*/}}
{{- define "mishards.np.nodePorts" -}}
- port: {{ .Values.node.port }}
  protocol: TCP
{{- $workers := int (include "mishards.workers" (dict "workers" .Values.readers.workers "resources" .Values.readers.resources)) }}
{{- if ne $workers 1 }}
{{- $first := int .Values.readers.workerPorts }}
- port: {{ $first }}
  endPort: {{ add $first (sub (ternary 256 $workers (eq $workers 0)) 1) }}
  protocol: TCP
{{- end }}
{{- end -}}

{{/* The port of HOST:PORT or SCHEME://HOST:PORT[/...] (default .default). */}}
{{- define "mishards.np.portOf" -}}
{{- $rest := regexReplaceAll "^[a-zA-Z][a-zA-Z0-9+.-]*://" .address "" -}}
{{- $hostPort := regexReplaceAll "/.*$" $rest "" -}}
{{- $port := regexFind "[0-9]+$" (regexFind ":[0-9]+$" $hostPort) -}}
{{- $port | default .default -}}
{{- end -}}

{{/*
Egress rules of a Mishards pod: what node and proxy processes dial. .dialsNodes: the proxies (fan-out and
forwards to the nodes' gRPC port); nodes dial no other node over the network (a reader's worker processes forward
to their primary over loopback, inside the pod).
*/}}
{{- define "mishards.np.egress" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $np := $v.networkPolicy.egress -}}
{{- if .dialsNodes }}
- to:
    {{- include "mishards.np.nodePeer" $root | nindent 4 }}
  ports:
    {{- include "mishards.np.nodePorts" $root | nindent 4 }}
{{- end }}
{{- if $v.mysql.deploy }}
- to:
    - podSelector:
        matchLabels:
          {{- include "mishards.selectorLabels" (dict "root" $root "component" "mariadb") | nindent 10 }}
  ports:
    - port: 3306
      protocol: TCP
{{- else }}
- ports:
    - port: {{ $np.externalCatalogPort }}
      protocol: TCP
{{- end }}
{{- if eq $v.membership.type "etcd" }}
{{- if $v.etcd.deploy }}
- to:
    - podSelector:
        matchLabels:
          {{- include "mishards.selectorLabels" (dict "root" $root "component" "etcd") | nindent 10 }}
  ports:
    - port: 2379
      protocol: TCP
{{- else }}
{{- $ports := list }}
{{- range $v.etcd.external.endpoints }}
{{- $ports = append $ports (include "mishards.np.portOf" (dict "address" . "default" "2379") | int) }}
{{- end }}
- ports:
    {{- range $ports | uniq }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
{{- end }}
{{- else }}
{{- /* Kubernetes membership: list and watch pods through the API server. */}}
- ports:
    {{- range $np.kubeApiPorts }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
  {{- with $np.kubeApi }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- with $v.tracing.otlpEndpoint }}
- ports:
    - port: {{ include "mishards.np.portOf" (dict "address" . "default" "4317") | int }}
      protocol: TCP
{{- end }}
- ports:                       # DNS
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- with $np.extra }}
{{ toYaml . }}
{{- end }}
{{- end -}}
