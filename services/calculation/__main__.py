from services.calculation.app import main

main()
