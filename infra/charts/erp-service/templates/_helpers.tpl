{{/* The unit's name: .Values.unit, else the release name. */}}
{{- define "erp-service.name" -}}
{{- default .Release.Name .Values.unit | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels every object carries. */}}
{{- define "erp-service.labels" -}}
app.kubernetes.io/name: {{ include "erp-service.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/component: {{ .Values.kind }}
app.kubernetes.io/part-of: erp-mesh
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- with .Values.release }}
erp.io/release: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* The labels a Deployment selects its pods by (never change after the first install). */}}
{{- define "erp-service.selector" -}}
app.kubernetes.io/name: {{ include "erp-service.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The port clients use: grpc for services, http for the gateway. */}}
{{- define "erp-service.mainPort" -}}
{{- if eq .Values.kind "gateway" -}}http{{- else -}}grpc{{- end -}}
{{- end -}}
