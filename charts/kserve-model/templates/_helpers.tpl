{{/* Labels on every object. Values are names the schema already restricts, quoted anyway. */}}
{{- define "kserve-model.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name | quote }}
app.kubernetes.io/instance: {{ .Values.name | quote }}
app.kubernetes.io/part-of: "modelci"
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | quote }}
{{- end }}

{{/* Provenance annotations: one per non-empty traceability value, always quoted. */}}
{{- define "kserve-model.traceability" -}}
{{- $keys := dict "project" "project" "branch" "branch" "commit" "commit" "environment" "environment" "runId" "mlflow-run-id" "registeredModel" "registered-model" "modelVersion" "model-version" "modelUri" "model-uri" "pipelineUrl" "pipeline-url" }}
{{- range $field, $suffix := $keys }}
{{- with index $.Values.traceability $field }}
modelci.io/{{ $suffix }}: {{ . | quote }}
{{- end }}
{{- end }}
{{- end }}

{{- define "kserve-model.serviceAccountName" -}}
{{- .Values.serviceAccount.name | default (printf "%s-s3" .Values.name) }}
{{- end }}

{{- define "kserve-model.modelApiUrl" -}}
{{- printf "%s://%s-%s.%s/v2/models/%s/infer" .Values.ingress.scheme .Values.name .Release.Namespace .Values.ingress.domain .Values.name }}
{{- end }}
