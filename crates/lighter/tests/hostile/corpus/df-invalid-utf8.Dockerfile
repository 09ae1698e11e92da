FROM scratch
LABEL a=ÿþÃ( b=í €
