{{/* Names ------------------------------------------------------------------------------------------ */}}

{{- define "mishards.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mishards.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "mishards.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mishards.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "mishards.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Labels: selector labels never change between releases; the others may. */}}

{{- define "mishards.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mishards.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "mishards.labels" -}}
{{ include "mishards.selectorLabels" . }}
helm.sh/chart: {{ include "mishards.chart" .root }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: mishards
{{- end -}}

{{/* Labels for the whole release (objects without a component). */}}
{{- define "mishards.releaseLabels" -}}
app.kubernetes.io/name: {{ include "mishards.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ include "mishards.chart" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mishards
{{- end -}}

{{/*
Worker processes of a reader or proxy pod (dict "workers" .workers "resources" .resources): "auto" = the pod's CPU
request in whole cores, rounded down, at least 1 ("500m" -> 1, "2" -> 2, "3500m" -> 3); a number as given (0: one
per CPU the pod may use, from its cgroup quota, decided by the process).
*/}}
{{- define "mishards.workers" -}}
{{- if eq (toString .workers) "auto" -}}
{{- $cpu := toString (dig "requests" "cpu" "" (default (dict) .resources)) -}}
{{- $cores := 1 -}}
{{- if hasSuffix "m" $cpu -}}
{{- $cores = div (atoi (trimSuffix "m" $cpu)) 1000 -}}
{{- else if $cpu -}}
{{- $cores = int (floor (float64 $cpu)) -}}
{{- end -}}
{{- max 1 $cores -}}
{{- else -}}
{{- int .workers -}}
{{- end -}}
{{- end -}}

{{- define "mishards.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Cluster wiring ---------------------------------------------------------------------------------- */}}

{{- define "mishards.roleLabel" -}}mishards.io/role{{- end -}}

{{/* The label selector of membership: node pods of this release (they, and only they, carry the role label). */}}
{{- define "mishards.memberSelector" -}}
app.kubernetes.io/name={{ include "mishards.name" . }},app.kubernetes.io/instance={{ .Release.Name }},{{ include "mishards.roleLabel" . }}
{{- end -}}

{{- define "mishards.etcdEndpoints" -}}
{{- if .Values.etcd.deploy -}}
{{- printf "%s-etcd:2379" (include "mishards.fullname" .) -}}
{{- else -}}
{{- if not .Values.etcd.external.endpoints -}}
{{- fail "membership.type etcd needs etcd.deploy=true or etcd.external.endpoints" -}}
{{- end -}}
{{- join "," .Values.etcd.external.endpoints -}}
{{- end -}}
{{- end -}}

{{/* The membership URI every node and proxy is given. */}}
{{- define "mishards.membershipUri" -}}
{{- if eq .Values.membership.type "k8s" -}}
{{- printf "k8s://%s?selector=%s&port=%d&role_label=%s" .Release.Namespace (include "mishards.memberSelector" .) (int .Values.node.port) (include "mishards.roleLabel" .) -}}
{{- else if eq .Values.membership.type "etcd" -}}
{{- printf "etcd://%s/%s%s" (include "mishards.etcdEndpoints" .) (trimPrefix "/" .Values.etcd.prefix) (include "mishards.databasesTls.etcdQuery" .) -}}
{{- else -}}
{{- fail (printf "membership.type must be k8s or etcd, not %q" .Values.membership.type) -}}
{{- end -}}
{{- end -}}

{{/* Where the catalog URI is: a Secret name and key. */}}
{{- define "mishards.metaSecretName" -}}
{{- if and (not .Values.mysql.deploy) .Values.mysql.external.existingSecret -}}
{{- .Values.mysql.external.existingSecret -}}
{{- else -}}
{{- printf "%s-catalog" (include "mishards.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "mishards.metaSecretKey" -}}
{{- if and (not .Values.mysql.deploy) .Values.mysql.external.existingSecret -}}
{{- .Values.mysql.external.existingSecretKey -}}
{{- else -}}
meta-uri
{{- end -}}
{{- end -}}

{{- define "mishards.metricsPort" -}}
{{- if .Values.metrics.enabled -}}{{ int .Values.metrics.port }}{{- else -}}0{{- end -}}
{{- end -}}

{{/* Pod pieces ------------------------------------------------------------------------------------- */}}

{{/* Pod annotations: config checksum (restart on change), Prometheus discovery, user annotations. */}}
{{- define "mishards.podAnnotations" -}}
checksum/config: {{ include (print .root.Template.BasePath "/configmap.yaml") .root | sha256sum }}
{{- if and .root.Values.metrics.enabled .root.Values.metrics.podAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .root.Values.metrics.port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- with .extra }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "mishards.affinity" -}}
{{- if .affinity -}}
{{ toYaml .affinity }}
{{- else if eq .root.Values.podAntiAffinity "soft" -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "mishards.selectorLabels" . | nindent 12 }}
{{- else if eq .root.Values.podAntiAffinity "hard" -}}
podAntiAffinity:
  requiredDuringSchedulingIgnoredDuringExecution:
    - topologyKey: kubernetes.io/hostname
      labelSelector:
        matchLabels:
          {{- include "mishards.selectorLabels" . | nindent 10 }}
{{- end -}}
{{- end -}}

{{/* Waits for the databases this release deploys itself (they start together with the nodes). */}}
{{- define "mishards.waitForDeps" -}}
{{- $targets := list -}}
{{- if .Values.mysql.deploy -}}
{{- $targets = append $targets (printf "%s-mariadb:3306" (include "mishards.fullname" .)) -}}
{{- end -}}
{{- if and (eq .Values.membership.type "etcd") .Values.etcd.deploy -}}
{{- $targets = append $targets (printf "%s-etcd:2379" (include "mishards.fullname" .)) -}}
{{- end -}}
{{- if $targets -}}
initContainers:
  - name: wait-for-dependencies
    image: {{ include "mishards.image" . }}
    imagePullPolicy: {{ .Values.image.pullPolicy }}
    command:
      - python
      - -c
      - |
        import os, socket, sys, time
        deadline = time.monotonic() + 900
        for target in os.environ["WAIT_FOR"].split(","):
            host, _, port = target.rpartition(":")
            while True:
                try:
                    socket.create_connection((host, int(port)), timeout=3).close()
                    print("reachable:", target, flush=True)
                    break
                except OSError as exc:
                    if time.monotonic() > deadline:
                        sys.exit(f"{target} still unreachable: {exc}")
                    print("waiting for", target, "-", exc, flush=True)
                    time.sleep(2)
    env:
      - name: WAIT_FOR
        value: {{ join "," $targets | quote }}
    resources:
      requests:
        cpu: 10m
        memory: 32Mi
      limits:
        memory: 64Mi
    securityContext:
      {{- toYaml .Values.securityContext | nindent 6 }}
{{- end }}
{{- end -}}

{{/*
A node pod template (writer and readers alike). Arguments: root (the chart context), component (writer|reader),
role (rw|ro), values (.Values.writer or .Values.readers).
*/}}
{{- define "mishards.nodePodTemplate" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
metadata:
  labels:
    {{- include "mishards.labels" . | nindent 4 }}
    {{ include "mishards.roleLabel" $root }}: {{ .role }}
    mishards.io/node: "true"
  annotations:
    {{- include "mishards.podAnnotations" (dict "root" $root "extra" .values.podAnnotations) | nindent 4 }}
spec:
  serviceAccountName: {{ include "mishards.serviceAccountName" $root }}
  automountServiceAccountToken: {{ eq $v.membership.type "k8s" }}
  # Service links would add variables such as MISHARDS_NODES_PORT=tcp://... (for release "mishards") to the
  # environment, next to the MISHARDS_NODE_* settings; a name that matched a setting would break the node: off.
  enableServiceLinks: false
  terminationGracePeriodSeconds: {{ $v.node.terminationGracePeriodSeconds }}
  {{- with $v.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $v.podSecurityContext | nindent 4 }}
  {{- with include "mishards.waitForDeps" $root }}
  {{- . | nindent 2 }}
  {{- end }}
  containers:
    - name: node
      image: {{ include "mishards.image" $root }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      args:
        - node
        - --config
        - /etc/mishards/node.yaml
        - --role
        - {{ .role }}
        {{- if and (eq .role "rw") $v.writer.standby (ne $v.membership.type "etcd") }}
        - --election
        - catalog
        {{- end }}
        {{- if eq .role "ro" }}
        {{- $workers := include "mishards.workers" (dict "workers" .values.workers "resources" .values.resources) }}
        - --workers
        - {{ $workers | quote }}
        {{- if ne $workers "1" }}
        - --worker-ports
        - {{ .values.workerPorts | quote }}
        {{- end }}
        {{- end }}
        - --health-port
        - {{ $v.node.healthPort | quote }}
        {{- include "mishards.clusterTls.args" $root | nindent 8 }}
        {{- include "mishards.auth.args" $root | nindent 8 }}
        {{- range $v.node.extraArgs }}
        - {{ . | quote }}
        {{- end }}
      env:
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        - name: POD_IP
          valueFrom:
            fieldRef:
              fieldPath: status.podIP
        # Membership names a pod by its name and reaches it at podIP:port; the node must agree.
        - name: MISHARDS_NODE_NODE_ID
          value: $(POD_NAME)
        - name: MISHARDS_NODE_ADVERTISE
          value: $(POD_IP):{{ $v.node.port }}
        - name: MISHARDS_NODE_META_URI
          valueFrom:
            secretKeyRef:
              name: {{ include "mishards.metaSecretName" $root }}
              key: {{ include "mishards.metaSecretKey" $root }}
        {{- with $v.node.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        - name: grpc
          containerPort: {{ $v.node.port }}
          protocol: TCP
        - name: health
          containerPort: {{ $v.node.healthPort }}
          protocol: TCP
        {{- if $v.metrics.enabled }}
        - name: metrics
          containerPort: {{ $v.metrics.port }}
          protocol: TCP
        {{- end }}
      # Service "" is SERVING once the process serves; milvus.grpc.MilvusService only once a read-only node has
      # loaded its share of segments (readiness, and so Kubernetes membership, waits for that). The probes ask the
      # plaintext health-only port: the kubelet cannot present the cluster certificate the gRPC port requires.
      startupProbe:
        grpc:
          port: {{ $v.node.healthPort }}
        periodSeconds: 5
        timeoutSeconds: 5
        failureThreshold: {{ div $v.node.startupTimeoutSeconds 5 | max 1 }}
      livenessProbe:
        grpc:
          port: {{ $v.node.healthPort }}
        periodSeconds: 10
        timeoutSeconds: 5
        failureThreshold: 6
      readinessProbe:
        grpc:
          port: {{ $v.node.healthPort }}
          service: milvus.grpc.MilvusService
        periodSeconds: 5
        timeoutSeconds: 5
        failureThreshold: 2
      resources:
        {{- toYaml .values.resources | nindent 8 }}
      securityContext:
        {{- toYaml $v.securityContext | nindent 8 }}
      volumeMounts:
        - name: data
          mountPath: {{ $v.storage.mountPath }}
        - name: config
          mountPath: /etc/mishards
          readOnly: true
        - name: tmp
          mountPath: /tmp
        {{- include "mishards.tls.volumeMounts" (dict "root" $root) | nindent 8 }}
  volumes:
    - name: data
      persistentVolumeClaim:
        claimName: {{ include "mishards.storageClaim" $root }}
    - name: config
      configMap:
        name: {{ include "mishards.fullname" $root }}-config
    - name: tmp
      emptyDir: {}
    {{- include "mishards.tls.volumes" (dict "root" $root) | nindent 4 }}
  {{- with .values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with (include "mishards.affinity" (dict "root" $root "component" .component "affinity" .values.affinity)) }}
  affinity:
    {{- . | nindent 4 }}
  {{- end }}
{{- end -}}

{{- define "mishards.storageClaim" -}}
{{- default (printf "%s-data" (include "mishards.fullname" .)) .Values.storage.existingClaim -}}
{{- end -}}
