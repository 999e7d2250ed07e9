{{/* _helpers.tpl - names and labels shared by every template of the chart. */}}

{{/* The chart name, or nameOverride. */}}
{{- define "keyrotator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name of the release's objects: fullnameOverride, else <release>-<name>, or
the release name alone when it already contains the chart name. */}}
{{- define "keyrotator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" | trimSuffix "." }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" | trimSuffix "." }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" | trimSuffix "." }}
{{- end }}
{{- end }}
{{- end }}

{{/* The name of an object that must be a DNS-1035 label (a Service): "<fullname>-<suffix>"
in at most 63 characters, whatever the release name Helm accepts (up to 53 characters, dots
allowed, a digit first allowed). The fullname is cut to leave room for the suffix (not the
whole, as `trunc 63` after the suffix would cut the suffix off); dots become dashes; a name
that would not start with a letter gets "kr-" in front. Call with (list . "metrics"). */}}
{{- define "keyrotator.labelName" -}}
{{- $ctx := index . 0 }}
{{- $suffix := index . 1 }}
{{- $base := include "keyrotator.fullname" $ctx | replace "." "-" }}
{{- if not (regexMatch "^[a-z]" $base) }}
{{- $base = printf "kr-%s" $base }}
{{- end }}
{{- printf "%s-%s" ($base | trunc (int (sub 62 (len $suffix))) | trimSuffix "-") $suffix }}
{{- end }}

{{/* The metrics Service: <fullname>-metrics, at most 63 characters. */}}
{{- define "keyrotator.metricsServiceName" -}}
{{- include "keyrotator.labelName" (list . "metrics") }}
{{- end }}

{{/* The checks values.schema.json cannot make; each fails the install with a message naming
the values. Included by deployment.yaml, so every rendering runs them. */}}
{{- define "keyrotator.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElect) }}
{{- fail (printf "replicaCount=%d with leaderElect=false: %d controllers would reconcile the same KeyRotations at once; set leaderElect=true, or replicaCount=1" (int .Values.replicaCount) (int .Values.replicaCount)) }}
{{- end }}
{{- if eq (int .Values.metricsPort) (int .Values.healthPort) }}
{{- fail (printf "metricsPort and healthPort are both %d: the pod declares each as its own container port; give them different ports" (int .Values.metricsPort)) }}
{{- end }}
{{- end }}

{{/* chart label value: name-version. */}}
{{- define "keyrotator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The labels selectors use: they never change across upgrades. Quoted: a release may be
named "1" or "true", which YAML would read as a number or a boolean. */}}
{{- define "keyrotator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "keyrotator.name" . | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/component: controller
{{- end }}

{{/* The standard labels of every object. */}}
{{- define "keyrotator.labels" -}}
helm.sh/chart: {{ include "keyrotator.chart" . }}
{{ include "keyrotator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: keyrotator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The controller image: image:imageTag, the tag defaulting to appVersion. */}}
{{- define "keyrotator.image" -}}
{{- printf "%s:%s" .Values.image (default .Chart.AppVersion .Values.imageTag) }}
{{- end }}

{{/* NOTES.txt: what "up" means for these values. */}}
{{- define "keyrotator.upNote" -}}
{{- $replicas := int .Values.replicaCount }}
{{- if and .Values.leaderElect (gt $replicas 1) }}
{{- printf "all %d replicas Ready; one holds the Lease, the others are warm standbys" $replicas }}
{{- else if .Values.leaderElect }}
{{- print "its one replica Ready, holding the Lease" }}
{{- else }}
{{- print "its one replica Ready; no leader election" }}
{{- end }}
{{- end }}

{{/* The alerts' selector of the controller's own series: the job Prometheus gives the
metrics Service's targets (a ServiceMonitor names it after the Service) and the release
namespace (a target label; the ServiceMonitor honours the series' own namespace label, so
per-KeyRotation series keep their KeyRotation's namespace). */}}
{{- define "keyrotator.alertSelector" -}}
job="{{ include "keyrotator.metricsServiceName" . }}",namespace="{{ .Release.Namespace }}"
{{- end }}
