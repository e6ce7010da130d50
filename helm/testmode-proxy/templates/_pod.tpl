{{/*
The proxy container and its volumes. The gateway Deployment uses them, and in sidecar mode NOTES.txt
prints them for pasting into an application's pod spec, so both modes run the same image and files.

What differs is who may connect (security issue #10, item 13):
- gateway: 0.0.0.0, behind its Service (and the NetworkPolicy, when enabled); kubelet probes and Prometheus
  reach the pod IP.
- sidecar: 127.0.0.1. Only the containers of the application's own pod share that loopback; on the pod IP any
  pod in the cluster could have sent requests with the sidecar's provider credential swapped in. Kubelet's
  httpGet probes connect to the pod IP, so the sidecar's probes are exec probes ("testmode-proxy.probe").
*/}}

{{- define "testmode-proxy.listenHost" -}}
{{- ternary "127.0.0.1" "0.0.0.0" (eq .Values.mode "sidecar") }}
{{- end }}

{{/*
A probe from values: as it is in gateway mode. In sidecar mode an httpGet probe becomes an exec probe that
sends the same GET to 127.0.0.1 from inside the container (proxy/probe.py, standard library only; -I keeps
PYTHON* variables and the working directory out of it) and fails unless the answer is 200.
*/}}
{{- define "testmode-proxy.probe" -}}
{{- $probe := deepCopy .probe }}
{{- $values := .context.Values }}
{{- if and (eq $values.mode "sidecar") $probe.httpGet }}
{{- $url := printf "http://127.0.0.1:%v%s" $values.containerPort ($probe.httpGet.path | default "/") }}
{{- $command := list "python" "-I" "-m" "proxy.probe" $url "--timeout" (toString ($probe.timeoutSeconds | default 1)) }}
{{- $_ := unset $probe "httpGet" }}
{{- $_ := set $probe "exec" (dict "command" $command) }}
{{- end }}
{{- toYaml $probe }}
{{- end }}

{{- define "testmode-proxy.container" -}}
name: testmode-proxy
image: {{ include "testmode-proxy.image" . | quote }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
args:
  - serve
{{- if eq .Values.mode "gateway" }}
ports:
  - name: http
    containerPort: {{ .Values.containerPort }}
    protocol: TCP
{{- end }}
env:
  - name: TESTMODE_PROXY_HOST
    value: {{ include "testmode-proxy.listenHost" . | quote }}
  - name: TESTMODE_PROXY_PORT
    value: {{ .Values.containerPort | quote }}
  - name: TESTMODE_PROXY_POLICIES
    value: /etc/testmode-proxy/policies
  - name: TESTMODE_PROXY_STATE_DIR
    value: /var/lib/testmode-proxy
  - name: TESTMODE_PROXY_LOG_LEVEL
    value: {{ .Values.logLevel | quote }}
  - name: TESTMODE_PROXY_DRAIN_TIMEOUT
    value: {{ .Values.drainTimeoutSeconds | quote }}
  {{- if include "testmode-proxy.hasKeyRegistry" . }}
  - name: TESTMODE_PROXY_KEYS
    value: /etc/testmode-proxy/keys/keys.json
  {{- end }}
  {{- if include "testmode-proxy.hasCredentials" . }}
  - name: TESTMODE_PROXY_CREDENTIALS_DIR
    value: /etc/testmode-proxy/credentials
  {{- end }}
  {{- range $policy, $url := .Values.upstreams }}
  - name: {{ printf "TESTMODE_PROXY_UPSTREAM_%s" ($policy | upper) }}
    value: {{ $url | quote }}
  {{- end }}
  {{- with .Values.extraEnv }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
volumeMounts:
  - name: testmode-proxy-policies
    mountPath: /etc/testmode-proxy/policies
    readOnly: true
  {{- if include "testmode-proxy.hasKeyRegistry" . }}
  - name: testmode-proxy-keys
    mountPath: /etc/testmode-proxy/keys
    readOnly: true
  {{- end }}
  {{- if include "testmode-proxy.hasCredentials" . }}
  - name: testmode-proxy-credentials
    mountPath: /etc/testmode-proxy/credentials
    readOnly: true
  {{- end }}
  - name: testmode-proxy-state
    mountPath: /var/lib/testmode-proxy
  - name: testmode-proxy-tmp
    mountPath: /tmp
  {{- with .Values.extraVolumeMounts }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- range $name := list "startupProbe" "livenessProbe" "readinessProbe" }}
{{- with index $.Values $name }}
{{ $name }}:
  {{- include "testmode-proxy.probe" (dict "probe" . "context" $) | nindent 2 }}
{{- end }}
{{- end }}
{{- if gt (int .Values.preStopSleepSeconds) 0 }}
lifecycle:
  preStop:
    sleep:
      seconds: {{ .Values.preStopSleepSeconds }}
{{- end }}
{{- with .Values.resources }}
resources:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.securityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- define "testmode-proxy.volumes" -}}
- name: testmode-proxy-policies
  configMap:
    name: {{ include "testmode-proxy.policiesConfigMapName" . }}
{{- if include "testmode-proxy.hasKeyRegistry" . }}
- name: testmode-proxy-keys
  secret:
    secretName: {{ include "testmode-proxy.keysSecretName" . }}
    items:
      - key: {{ ternary "keys.json" .Values.keyRegistry.existingSecretKey (empty .Values.keyRegistry.existingSecret) }}
        path: keys.json
{{- end }}
{{- if include "testmode-proxy.hasCredentials" . }}
- name: testmode-proxy-credentials
  secret:
    secretName: {{ include "testmode-proxy.credentialsSecretName" . }}
{{- end }}
- name: testmode-proxy-state
  emptyDir:
    {{- with .Values.stateVolume.medium }}
    medium: {{ . }}
    {{- end }}
    {{- with .Values.stateVolume.sizeLimit }}
    sizeLimit: {{ . }}
    {{- end }}
- name: testmode-proxy-tmp
  emptyDir:
    sizeLimit: 64Mi
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}
