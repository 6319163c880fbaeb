"""GENNAPE Studio Streamlit front end (run ``python -m streamlit run app/streamlit_app.py``)."""
