{{/*
The proxy container and its volumes. The gateway Deployment uses them, and in sidecar mode NOTES.txt
prints them for pasting into an application's pod spec, so both modes run the same container.
*/}}

{{- define "testmode-proxy.container" -}}
name: testmode-proxy
image: {{ include "testmode-proxy.image" . | quote }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
args:
  - serve
ports:
  - name: http
    containerPort: {{ .Values.containerPort }}
    protocol: TCP
env:
  {{- /* 0.0.0.0: kubelet probes and Prometheus reach the pod IP, not loopback. */}}
  - name: TESTMODE_PROXY_HOST
    value: "0.0.0.0"
  - name: TESTMODE_PROXY_PORT
    value: {{ .Values.containerPort | quote }}
  - name: TESTMODE_PROXY_POLICIES
    value: /etc/testmode-proxy/policies
  - name: TESTMODE_PROXY_STATE_DIR
    value: /var/lib/testmode-proxy
  - name: TESTMODE_PROXY_LOG_LEVEL
    value: {{ .Values.logLevel | quote }}
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
{{- with .Values.startupProbe }}
startupProbe:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.livenessProbe }}
livenessProbe:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.readinessProbe }}
readinessProbe:
  {{- toYaml . | nindent 2 }}
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
