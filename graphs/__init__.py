"""The graphs `langgraph.json` serves to the LangGraph server and Studio, compiled with nothing bound."""
