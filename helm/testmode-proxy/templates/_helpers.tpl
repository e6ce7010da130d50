{{/*
Names and labels. Kubernetes names are capped at 63 characters (DNS-1123 labels).
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "testmode-proxy.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The fully qualified app name: the release name alone when it already contains the chart name.
*/}}
{{- define "testmode-proxy.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Chart name and version, for the helm.sh/chart label. */}}
{{- define "testmode-proxy.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "testmode-proxy.labels" -}}
helm.sh/chart: {{ include "testmode-proxy.chart" . }}
{{ include "testmode-proxy.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: {{ .Values.mode }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels: immutable on a Deployment, so nothing that changes between upgrades. */}}
{{- define "testmode-proxy.selectorLabels" -}}
app.kubernetes.io/name: {{ include "testmode-proxy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Annotations of an object: commonAnnotations merged with the object's own ("extra" wins); empty when none.
*/}}
{{- define "testmode-proxy.annotations" -}}
{{- with merge (dict) (.extra | default dict) .context.Values.commonAnnotations }}
{{- toYaml . }}
{{- end }}
{{- end }}

{{/* The ServiceAccount the gateway pods run as. */}}
{{- define "testmode-proxy.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "testmode-proxy.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image reference: a digest wins over a tag; the tag defaults to the chart's appVersion. */}}
{{- define "testmode-proxy.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Names of the objects holding configuration, rendered or supplied by the user. */}}
{{- define "testmode-proxy.policiesConfigMapName" -}}
{{- default (printf "%s-policies" (include "testmode-proxy.fullname" .)) .Values.policies.existingConfigMap }}
{{- end }}

{{- define "testmode-proxy.keysSecretName" -}}
{{- default (printf "%s-keys" (include "testmode-proxy.fullname" .)) .Values.keyRegistry.existingSecret }}
{{- end }}

{{- define "testmode-proxy.credentialsSecretName" -}}
{{- default (printf "%s-credentials" (include "testmode-proxy.fullname" .)) .Values.credentials.existingSecret }}
{{- end }}

{{/* Whether a key registry / credentials are configured at all (rendered or existing). */}}
{{- define "testmode-proxy.hasKeyRegistry" -}}
{{- if or .Values.keyRegistry.content .Values.keyRegistry.existingSecret }}true{{- end }}
{{- end }}

{{- define "testmode-proxy.hasCredentials" -}}
{{- if or .Values.credentials.values .Values.credentials.existingSecret }}true{{- end }}
{{- end }}

{{/*
The policy files of the ConfigMap: the bundled copies (files/policies/*.yaml) overlaid by policies.files.
A JSON object, so the ConfigMap and its checksum come from one place; JSON keeps every byte of the files
(toYaml trims a final newline).
*/}}
{{- define "testmode-proxy.policyFiles" -}}
{{- $files := dict }}
{{- if .Values.policies.bundled }}
{{- range $path, $_ := .Files.Glob "files/policies/*.yaml" }}
{{- $_ := set $files (base $path) ($.Files.Get $path) }}
{{- end }}
{{- end }}
{{- range $name, $content := .Values.policies.files }}
{{- $_ := set $files $name $content }}
{{- end }}
{{- toJson $files }}
{{- end }}

{{/*
One gateway pod only, while the state is SQLite: each pod keeps its own file in its own emptyDir, so two pods
behind one Service would each hold part of it (an idempotency key claimed in one pod is unknown to the other,
a sandbox workspace is split in two). Lifted when a store shared between pods exists (shared/DESIGN.md, "What
later capabilities will ask of this").
*/}}
{{- define "testmode-proxy.singleReplica" -}}
{{- if and (eq .Values.mode "gateway") (or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled) }}
{{- fail "replicaCount > 1 and autoscaling.enabled are refused: each gateway pod keeps its state in its own SQLite file (TESTMODE_PROXY_STATE_DIR on an emptyDir), so several pods behind one Service would split it. Run replicaCount: 1 until a store shared between pods exists." }}
{{- end }}
{{- end }}

{{/*
Termination: kubelet runs the preStop pause, then sends SIGTERM, and kills the container
terminationGracePeriodSeconds after termination began. The proxy drains for up to drainTimeoutSeconds after
SIGTERM (proxy/server.py), so a grace period shorter than both together would kill requests still in flight.
*/}}
{{- define "testmode-proxy.gracePeriod" -}}
{{- $needed := add (int .Values.preStopSleepSeconds) (int .Values.drainTimeoutSeconds) }}
{{- if lt (int .Values.terminationGracePeriodSeconds) (int $needed) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be at least preStopSleepSeconds + drainTimeoutSeconds (%d + %d = %d): a shorter grace period kills requests the proxy is still draining." (int .Values.terminationGracePeriodSeconds) (int .Values.preStopSleepSeconds) (int .Values.drainTimeoutSeconds) (int $needed)) }}
{{- end }}
{{- end }}
